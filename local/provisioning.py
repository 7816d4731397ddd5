"""The local runtime's AWS resources: moto's server started, and the template's tables,
queues, buckets, secrets and state machines created in it, empty each time.

Part of the local runtime (``local/server.py`` calls it); nothing here is deployed.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.template import ACCOUNT_ID, REGION, AppTemplate, Resolver

HOST = "127.0.0.1"


@dataclass
class Provisioned:
    """What was created, by the template's logical ids."""

    queue_urls: dict[str, str] = field(default_factory=dict)
    stream_arns: dict[str, str] = field(default_factory=dict)
    secret_arns: dict[str, str] = field(default_factory=dict)


def queue_arn(logical_id: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{logical_id}"


def provision(template: AppTemplate, aws_client: Callable[[str], Any]) -> Provisioned:
    """Create the template's tables (with streams), secrets, buckets and queues."""
    created = Provisioned()
    dynamodb = aws_client("dynamodb")
    for name, table in template.tables.items():
        create_table(dynamodb, name, table.properties)
        stream = dynamodb.describe_table(TableName=name)["Table"].get("LatestStreamArn")
        if stream:
            created.stream_arns[name] = stream
    secretsmanager = aws_client("secretsmanager")
    for name, properties in template.secrets.items():
        value = properties.get("SecretString") or secrets.token_urlsafe(48)  # as GenerateSecretString would
        created.secret_arns[name] = secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
    s3 = aws_client("s3")
    for name in template.buckets:
        s3.create_bucket(Bucket=bucket_name(name))
    sqs = aws_client("sqs")
    # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
    ordered = sorted(template.queues.items(), key=lambda item: item[1].dead_letter_queue is not None)
    for name, queue in ordered:
        attributes: dict[str, str] = {
            key: str(queue.properties[key])
            for key in ("MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds")
            if key in queue.properties
        }
        if queue.dead_letter_queue is not None:
            receives = int(queue.properties["RedrivePolicy"]["maxReceiveCount"])
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": queue_arn(queue.dead_letter_queue), "maxReceiveCount": receives}
            )
        created.queue_urls[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return created


def create_state_machines(
    template: AppTemplate, aws_endpoint: str, aws_client: Callable[[str], Any], resolver: Resolver
) -> dict[str, str]:
    """Each state machine of the template in moto, with moto's ASL interpreter on: a
    started execution really runs, its Task states invoking the local functions. Returns
    their ARNs by logical id."""
    arns: dict[str, str] = {}
    if not template.state_machines:
        return arns
    config = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
    request = urllib.request.Request(f"{aws_endpoint}/moto-api/config", data=config, method="POST")  # noqa: S310
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310  loopback
    stepfunctions = aws_client("stepfunctions")
    for logical_id, properties in template.state_machines.items():
        definition = resolver.resolve(properties["DefinitionString"])
        arns[logical_id] = stepfunctions.create_state_machine(
            name=logical_id,
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{logical_id}",  # not checked locally
            type=str(properties.get("StateMachineType", "STANDARD")),
        )["stateMachineArn"]
    return arns


def bucket_name(logical_id: str) -> str:
    """A valid S3 bucket name for a template bucket (lower case, at most 63 characters)."""
    return logical_id.lower()[:63]


def create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> None:
    """Create a table as the template declares it (keys, indexes, TTL), on demand."""
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = [
            {k: v for k, v in index.items() if k != "ProvisionedThroughput"}
            for index in properties["GlobalSecondaryIndexes"]
        ]
    if properties.get("StreamSpecification"):
        request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    dynamodb.create_table(**request)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def _with_root(python_path: str | None) -> str:
    """``PYTHONPATH`` with this repository first, so ``python -m local.moto_server`` runs from anywhere."""
    root = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join([root, *([python_path] if python_path else [])])


def start_moto(lambda_port: int, attempts: int = 3) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in a process of its own, so it has a core to itself rather than sharing
    this process's GIL with the API and Lambda front doors. Returns the process and its URL.

    ``lambda_port``: where moto's own calls to Lambda go (``MOTO_PORT``: its Step Functions
    interpreter invokes functions there)."""
    for _ in range(attempts):
        with socket.socket() as probe:  # a free port; the tiny race with other programs is retried
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(  # noqa: S603  fixed arguments
            [sys.executable, "-m", "local.moto_server", "-H", HOST, "-p", str(port)],
            env={**os.environ, "MOTO_PORT": str(lambda_port), "PYTHONPATH": _with_root(os.environ.get("PYTHONPATH"))},
            stdout=subprocess.DEVNULL,  # its stderr is ours: what it logs there went wrong (local/moto_server.py)
        )
        endpoint = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()  # noqa: S310  loopback
                return process, endpoint
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        process.kill()
        process.wait()
    raise RuntimeError("moto's server did not start")
