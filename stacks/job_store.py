"""The job store: the DynamoDB jobs table, the idempotency table and the results bucket."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from jobs.settings import Settings
from stacks.config import AppConfig
from stacks.python_function import acknowledge, logical_id

# Key prefix of stored results (lambdas/jobs/results.py writes results/<job_id>/<attempt>.json).
RESULTS_PREFIX = "results/"

# Attribute names shared with lambdas/jobs/repository.py (the item layout is documented
# there; tests/infra checks both sides agree).
JOB_KEY = "job_id"
JOB_TTL_ATTRIBUTE = "expires_at"
ACTIVE_INDEX = "active-jobs"
ACTIVE_SHARD = "active_shard"
STUCK_AFTER = "stuck_after"
OWNER_INDEX = "owner-shards"
OWNER_SHARD = "owner_shard"
LISTING_ORDER = "listing_order"
# The owner index of stacks deployed before it was sharded: kept only while upgrading one
# (keep_legacy_owner_index), exactly as it was, so that CloudFormation leaves it alone.
LEGACY_OWNER_INDEX = "owner-jobs"
LEGACY_LISTED_ATTRIBUTES = (
    "task",
    "status",
    "updated_at",
    "attempts",
    "progress_percent",
    "progress_message",
    "error_type",
    "error_message",
    "cancel_requested_at",
)
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
            # Changes feed the webhook callbacks (and WebSocket push): old and new image,
            # so a consumer sees which move a change was.
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            **common,  # type: ignore[arg-type]
        )
        # Sparse: only unfinished jobs carry these keys, so the reaper's query reads just
        # them. Keys only: the reaper needs nothing but the job id.
        self.jobs_table.add_global_secondary_index(
            index_name=ACTIVE_INDEX,
            partition_key=dynamodb.Attribute(name=ACTIVE_SHARD, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=STUCK_AFTER, type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        # Each caller's job ids, newest first, for GET /jobs. Keys only, so that nothing but
        # a job's creation (and its expiry) writes it; each caller spread over several keys,
        # so that one caller submitting everything has no hot partition (docs/capacity.md).
        self.jobs_table.add_global_secondary_index(
            index_name=OWNER_INDEX,
            partition_key=dynamodb.Attribute(name=OWNER_SHARD, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=LISTING_ORDER, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        if config.keep_legacy_owner_index:
            self.jobs_table.add_global_secondary_index(
                index_name=LEGACY_OWNER_INDEX,
                partition_key=dynamodb.Attribute(name="owner", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.INCLUDE,
                non_key_attributes=list(LEGACY_LISTED_ATTRIBUTES),
            )
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_KEY, type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            **common,  # type: ignore[arg-type]
        )

        # Results too large to keep on the job item. Private, encrypted, TLS only; objects
        # expire with the jobs they belong to (a job expires job_retention_days after it ends).
        self.results_bucket = s3.Bucket(
            self,
            "ResultsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    prefix=RESULTS_PREFIX,
                    expiration=Duration.days(config.job_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=config.removal,
            auto_delete_objects=config.destroy_on_removal,
        )
        acknowledge(
            self.results_bucket,
            "AwsSolutions-S1",
            "Objects are written by the worker and read only through short-lived presigned URLs issued to "
            "the job's owner; CloudTrail S3 data events give an audit trail if needed, without a log bucket.",
        )

    def environment(self) -> dict[str, str]:
        """The variables every function needs to find the jobs table and the results bucket."""
        return Settings.variables(
            jobs_table_name=self.jobs_table.table_name, results_bucket_name=self.results_bucket.bucket_name
        )

    def grant_results(self, function: lambda_.Function, action: str) -> None:
        """One object action (``s3:PutObject`` to store, ``s3:GetObject`` to presign: a
        presigned URL carries its signer's permissions) on stored results only. Narrower
        than the bucket's ``grant_put``/``grant_read``, which add ``Abort*``, ``List*``..."""
        iam.Grant.add_to_principal(
            grantee=function,
            actions=[action],
            resource_arns=[self.results_bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
        )
        bucket = logical_id(self.results_bucket)
        acknowledge(
            function,
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{RESULTS_PREFIX}*]",
            "Result objects are named per job and attempt at run time; the results/ prefix is the narrowest "
            "fixed scope.",
        )

    def grant_jobs(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Item actions on the jobs table itself, not its indexes (``Table.grant`` would add
        ``index/*``, and only the reaper reads an index)."""
        iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[self.jobs_table.table_arn])

    def grant_query_index(self, grantee: iam.IGrantable, index_name: str) -> None:
        """``Query`` on one index of the jobs table."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["dynamodb:Query"],
            resource_arns=[f"{self.jobs_table.table_arn}/index/{index_name}"],
        )
