"""Infrastructure: one construct per concern, composed by ``AsyncJobsStack``.

* ``job_store``  the DynamoDB jobs table and the idempotency table
* ``worker``     the worker function, its retries, the on-failure recorder and the DLQ
* ``api``        the REST API with the submit and status functions
* ``monitoring`` the alarm topic and the CloudWatch alarms
* ``network``    ``vpc=new``: the worker's VPC, isolated subnets and gateway endpoints
* ``config``     every setting, read from CDK context (``cdk.json``) and validated

The Lambda code's package (``lambdas/jobs``) is importable from here: what the stack and
the functions must agree on (the app's name, the schemas, the task registry) has one home.
"""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
