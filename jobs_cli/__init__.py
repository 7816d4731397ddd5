"""``jobs``: a command-line client for the async-jobs API, local or deployed."""
