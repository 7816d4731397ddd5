"""async-jobs Lambda code: thin handlers (``handlers/``) over a small domain core.

* ``model``      job record, statuses and the allowed transitions (pure Python)
* ``tasks``      THE TASK REGISTRY: where your own long-running work goes
* ``service``    submit and status use cases; ``runner`` runs one delivery of a job
* ``delivery``   what the workers share: the runner from the settings, outcomes counted
* ``repository`` DynamoDB data access; ``dispatcher`` the hand-over to the worker and
                 the worker event it carries (built and read there)
* ``clients``    the AWS clients: one per service and process, created on first use
* ``settings``   configuration from environment variables, validated at cold start
"""
