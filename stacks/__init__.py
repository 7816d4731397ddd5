"""Infrastructure: one construct per concern, composed by ``AsyncJobsStack``.

* ``job_store``  the DynamoDB jobs table and the idempotency table
* ``worker``     the worker function, its retries, the on-failure recorder and the DLQ
* ``api``        the REST API with the submit and status functions
* ``monitoring`` the alarm topic and the CloudWatch alarms
* ``config``     every setting, read from CDK context (``cdk.json``) and validated
"""
