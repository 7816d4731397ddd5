"""The job store: the DynamoDB jobs table and the idempotency table."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from stacks.config import AppConfig

# Attribute names shared with lambdas/jobs/repository.py (the item layout is documented there).
JOB_KEY = "job_id"
JOB_TTL_ATTRIBUTE = "expires_at"
# Powertools idempotency's default layout for its DynamoDB persistence layer.
IDEMPOTENCY_KEY = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"


class JobStore(Construct):
    """Jobs live in one table keyed by ``job_id``; finished jobs expire through TTL."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig) -> None:
        super().__init__(scope, construct_id)
        common = {
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            "encryption": dynamodb.TableEncryption.AWS_MANAGED,
            "removal_policy": config.removal,
            "deletion_protection": not config.destroy_on_removal,
        }
        self.jobs_table = dynamodb.Table(
            self,
            "JobsTable",
            partition_key=dynamodb.Attribute(name=JOB_KEY, type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=JOB_TTL_ATTRIBUTE,
            **common,  # type: ignore[arg-type]
        )
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_KEY, type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            **common,  # type: ignore[arg-type]
        )
