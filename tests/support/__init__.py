"""What the tests (and the benchmarks) bring with them, so they never rely on the app's own code."""

# The modules the local runtime's sandboxes import before each handler (``preload``): the
# tests' tasks, in place of the app's (``tests/support/tasks.py``). Named, not imported, so
# a benchmark can pass it without installing the tasks in its own process.
TEST_TASKS = ("tests.support.tasks",)

# vpc=existing with made-up ids: your VPC, two subnets, the worker's security group and the
# route table the gateway endpoints go on (cdk.json context, as a user would pass it).
EXISTING_VPC = {
    "vpc": "existing",
    "vpc_id": "vpc-0123456789abcdef0",
    "vpc_subnet_ids": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "vpc_security_group_id": "sg-0123456789abcdef0",
    "vpc_route_table_ids": "rtb-0123456789abcdef0",
}
