"""What the tests (and the benchmarks) bring with them, so they never rely on the app's own code."""

# The modules the local runtime's sandboxes import before each handler (``preload``): the
# tests' tasks, in place of the app's (``tests/support/tasks.py``). Named, not imported, so
# a benchmark can pass it without installing the tasks in its own process.
TEST_TASKS = ("tests.support.tasks",)
