"""Upgrading a stack deployed before the owner index was sharded (issue #18).

Such a stack's jobs table has the ``owner-jobs`` index; this version has ``owner-shards``.
CloudFormation adds or deletes one global secondary index per update, never both ("If you
do both in the same update ... the update fails", ``AWS::DynamoDB::Table``), so:

1. ``cdk deploy -c keep_legacy_owner_index=true``: adds ``owner-shards``, keeps ``owner-jobs``;
2. ``python -m doctor.upgrade [-c stage=...]``: gives the jobs created before step 1 their
   ``owner-shards`` keys, so that listings show them (this module's :func:`backfill`);
3. ``cdk deploy``: deletes ``owner-jobs``.

``make doctor`` runs :func:`check_owner_index` to say which step a stack is at. The
backfill reads the table once (a Scan) and writes each job without the keys once; it is
safe to run again, and beside the running app (a conditional write per job).
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from jobs.items import to_attributes
from jobs.repository import LISTING_ORDER, OWNER_INDEX, OWNER_SHARD, owner_index_keys
from local.synth import parse_context
from stacks.config import AppConfig, ConfigError
from stacks.job_store import LEGACY_OWNER_INDEX

STEPS = (
    "deploy once with -c keep_legacy_owner_index=true, wait until owner-shards is ACTIVE (make doctor says), "
    "run python -m doctor.upgrade, then deploy without it"
)


def jobs_table_of(cloudformation: Any, stack_name: str) -> str | None:
    """The deployed stack's jobs table (its ``JobsTableName`` output); None if no stack."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    return outputs.get("JobsTableName")


def indexes_of(dynamodb: Any, table: str) -> dict[str, str]:
    """Each global secondary index of ``table`` and its status (``ACTIVE`` once built; a new
    index is ``CREATING`` while DynamoDB backfills it)."""
    described = dynamodb.describe_table(TableName=table)["Table"]
    return {
        index["IndexName"]: "CREATING" if index.get("Backfilling") else index.get("IndexStatus", "ACTIVE")
        for index in described.get("GlobalSecondaryIndexes", [])
    }


def upgrade_step(indexes: dict[str, str] | None, keep_legacy: bool) -> tuple[str, str]:
    """(``"ok"``, ``"warn"`` or ``"fail"``: whether this deploy can succeed; what to say)
    for a jobs table with ``indexes`` (None: no stack yet) and ``keep_legacy_owner_index``."""
    if indexes is None:
        if keep_legacy:
            return "warn", "no stack yet: keep_legacy_owner_index=true would create an index nothing needs"
        return "ok", "no stack yet"
    old, new = LEGACY_OWNER_INDEX in indexes, OWNER_INDEX in indexes
    if keep_legacy and not old and not new:
        return "fail", (
            "the jobs table has neither owner index: keep_legacy_owner_index=true would add two in one "
            "update, which CloudFormation refuses; deploy without it"
        )
    if keep_legacy and indexes.get(LEGACY_OWNER_INDEX) == "DELETING":
        return "fail", f"{LEGACY_OWNER_INDEX} is being deleted: deploy without keep_legacy_owner_index"
    if old and not new and not keep_legacy:
        return "fail", (
            f"the jobs table has {LEGACY_OWNER_INDEX} and not {OWNER_INDEX}: this deploy would delete one "
            "index and add another in one update, which CloudFormation refuses"
        )
    if old and new and not keep_legacy:
        if indexes[OWNER_INDEX] == "CREATING":
            # "During the backfilling phase, you can't add or delete other indexes on the
            # table" (Amazon DynamoDB Developer Guide, GSI.OnlineOps.html).
            return "fail", (
                f"{OWNER_INDEX} is still being built ({indexes[OWNER_INDEX]}): DynamoDB deletes no index meanwhile"
            )
        return "ok", f"this deploy deletes {LEGACY_OWNER_INDEX} (run python -m doctor.upgrade first if you have not)"
    if old and keep_legacy:
        return "ok", f"upgrading: keeps {LEGACY_OWNER_INDEX} beside {OWNER_INDEX}; then python -m doctor.upgrade"
    if keep_legacy:
        return "warn", f"keep_legacy_owner_index=true would add {LEGACY_OWNER_INDEX} back: set it only to upgrade"
    return "ok", f"{OWNER_INDEX}: nothing to upgrade"


def backfill(dynamodb: Any, table: str) -> int:
    """Give every job without owner-index keys its keys; returns how many it changed."""
    changed = 0
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="attribute_not_exists(#shard)",
        ProjectionExpression="job_id, #owner, created_at",
        ExpressionAttributeNames={"#shard": OWNER_SHARD, "#owner": "owner"},
    )
    for page in pages:
        for item in page.get("Items", []):
            if "owner" not in item or "created_at" not in item:
                continue  # not a job this app wrote: nothing to list it under
            job_id, owner, created_at = item["job_id"]["S"], item["owner"]["S"], item["created_at"]["S"]
            keys = owner_index_keys(owner, job_id, created_at)
            try:
                dynamodb.update_item(
                    TableName=table,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression=f"SET {OWNER_SHARD} = :shard, {LISTING_ORDER} = :order",
                    ConditionExpression=f"attribute_exists(job_id) AND attribute_not_exists({OWNER_SHARD})",
                    ExpressionAttributeValues=to_attributes(
                        {":shard": keys[OWNER_SHARD], ":order": keys[LISTING_ORDER]}
                    ),
                )
                changed += 1
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass  # expired meanwhile, or keyed by the app already
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m doctor.upgrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--region", help="default: your AWS configuration's region")
    args = parser.parse_args(argv)
    try:
        config = AppConfig.from_mapping(parse_context(args.context))
        session = boto3.session.Session(region_name=args.region)
        table = jobs_table_of(session.client("cloudformation"), config.stack_name)
        if table is None:
            print(f"{config.stack_name} is not deployed: nothing to upgrade")
            return 1
        changed = backfill(session.client("dynamodb"), table)
    except (ConfigError, ValueError, BotoCoreError, ClientError) as error:
        print(f"upgrade failed: {error}")
        return 1
    print(f"{changed} job(s) in {table} given their {OWNER_INDEX} keys; now deploy without keep_legacy_owner_index")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
