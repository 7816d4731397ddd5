"""A read-only preflight of the account and region you are about to deploy to.

Run it with your own credentials (any profile or role that can read these settings):

    make doctor                                  # the dev stage's settings
    make doctor CDK_ARGS="-c stage=prod -c worker_reserved_concurrency=50"

Each check prints what it found and, when something is wrong, the fix. Nothing is
changed. Exit code 1 when a check fails (the deploy would fail, or a feature would not
work), 0 otherwise (warnings included). What each check reads:

* the CDK bootstrap stack's version (SSM parameter ``/cdk-bootstrap/hnb659fds/version``);
* API Gateway's account setting ``cloudWatchRoleArn`` (``apigateway:GET /account``);
* the Powertools layer version in this region, and the runtime and architecture it is built
  for (``lambda:GetLayerVersionByArn``; the layer is public);
* the account's Lambda concurrency (``lambda:GetAccountSettings``);
* whether the deployed stack's jobs table needs the owner-index upgrade first
  (``cloudformation:DescribeStacks``, ``dynamodb:DescribeTable``; ``doctor/upgrade.py``);
* the alarm e-mail setting (no call).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from doctor.upgrade import STEPS as UPGRADE_STEPS
from doctor.upgrade import indexes_of, jobs_table_of, upgrade_step
from local.synth import parse_context
from stacks.config import UNRESERVED_CONCURRENCY_MINIMUM, AppConfig, ConfigError
from stacks.python_function import POWERTOOLS_LAYER_NAME, POWERTOOLS_PUBLISHERS, RUNTIME

# CDK's default synthesizer refuses bootstrap stacks older than this (the template's
# CheckBootstrapVersion rule lists the versions before it).
MIN_BOOTSTRAP_VERSION = 6
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    check: str
    verdict: str  # OK, WARN or FAIL
    found: str
    fix: str = ""

    def line(self) -> str:
        text = f"[{self.verdict:>4}] {self.check}: {self.found}"
        return f"{text}\n       fix: {self.fix}" if self.fix else text


ClientFactory = Callable[[str], Any]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def check_identity(clients: ClientFactory, region: str) -> tuple[Finding, str | None]:
    try:
        account = str(clients("sts").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as error:
        return Finding("credentials", FAIL, f"no usable AWS credentials ({error})", "log in (aws sso login, ...)"), None
    return Finding("credentials", OK, f"account {account}, region {region}"), account


def check_bootstrap(clients: ClientFactory, account: str, region: str) -> Finding:
    fix = f"npx cdk bootstrap aws://{account}/{region}"
    try:
        value = clients("ssm").get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"]
    except ClientError as error:
        if _error_code(error) == "ParameterNotFound":
            return Finding("cdk bootstrap", FAIL, "this account and region are not bootstrapped", fix)
        return Finding("cdk bootstrap", WARN, f"could not read {BOOTSTRAP_VERSION_PARAMETER} ({_error_code(error)})")
    if int(value) < MIN_BOOTSTRAP_VERSION:
        return Finding("cdk bootstrap", FAIL, f"bootstrap version {value}, older than {MIN_BOOTSTRAP_VERSION}", fix)
    return Finding("cdk bootstrap", OK, f"bootstrap version {value}")


def check_api_gateway_role(clients: ClientFactory, config: AppConfig) -> Finding:
    name = "API Gateway CloudWatch role"
    try:
        role = clients("apigateway").get_account().get("cloudwatchRoleArn")
    except ClientError as error:
        return Finding(name, WARN, f"could not read API Gateway's account settings ({_error_code(error)})")
    if config.apigateway_cloudwatch_role:
        if role:
            return Finding(
                name,
                WARN,
                f"the account already logs through {role}; the stack will set its own role instead (retained)",
                "keep yours with -c apigateway_cloudwatch_role=false",
            )
        return Finding(name, OK, "none set yet; the stack creates one (apigateway_cloudwatch_role=true)")
    if role:
        return Finding(name, OK, f"the account logs through {role} (apigateway_cloudwatch_role=false)")
    return Finding(
        name,
        FAIL,
        "none set, and apigateway_cloudwatch_role=false: creating the API's stage will fail "
        "(CloudWatch Logs role ARN must be set in account settings to enable logging)",
        "deploy with -c apigateway_cloudwatch_role=true, or set the role in API Gateway's settings",
    )


def powertools_layer_arn(region: str, version: int) -> str | None:
    """The public layer's ARN in ``region``, or None outside the partition it is published in."""
    partition = boto3.session.Session().get_partition_for_region(region)
    account = POWERTOOLS_PUBLISHERS.get(partition)
    return (
        None
        if account is None
        else f"arn:{partition}:lambda:{region}:{account}:layer:{POWERTOOLS_LAYER_NAME}:{version}"
    )


def check_powertools_layer(clients: ClientFactory, config: AppConfig, region: str) -> Finding:
    name = "Powertools layer and runtime"
    arn = powertools_layer_arn(region, config.powertools_layer_version)
    if arn is None:
        return Finding(name, FAIL, f"no public Powertools layer is published in {region}'s partition", "")
    try:
        layer = clients("lambda").get_layer_version_by_arn(Arn=arn)
    except ClientError as error:
        return Finding(
            name,
            FAIL,
            f"{arn} cannot be read here ({_error_code(error)})",
            "set powertools_layer_version to a version published in this region (Powertools docs, Lambda Layer)",
        )
    runtimes, architectures = layer.get("CompatibleRuntimes", []), layer.get("CompatibleArchitectures", [])
    if RUNTIME.name not in runtimes or "arm64" not in architectures:
        return Finding(name, FAIL, f"{arn} is built for {runtimes} {architectures}, not {RUNTIME.name} arm64")
    return Finding(name, OK, f"{arn} ({RUNTIME.name}, arm64)")


def check_concurrency(clients: ClientFactory, config: AppConfig) -> Finding:
    """Reserved and provisioned concurrency both come out of the account's unreserved pool,
    which must keep 100 (Lambda Developer Guide, "Configuring reserved concurrency" and
    "Configuring provisioned concurrency"): CloudFormation fails on the function or alias
    that would take more. A new account may have 10 in all."""
    name = "Lambda concurrency"
    try:
        limits = clients("lambda").get_account_settings()["AccountLimit"]
    except ClientError as error:
        return Finding(name, WARN, f"could not read the account's Lambda settings ({_error_code(error)})")
    total, unreserved = int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
    found = f"{total} in all, {unreserved} unreserved"
    api, worker = config.allocated_concurrency()
    if api + worker and unreserved - (api + worker) < UNRESERVED_CONCURRENCY_MINIMUM:
        asked = " and ".join(
            text
            for amount, text in (
                (api, f"{api} provisioned for the API functions (api_provisioned_concurrency)"),
                (worker, f"{worker} reserved or provisioned for the worker"),
            )
            if amount
        )
        needed = total - unreserved + api + worker + UNRESERVED_CONCURRENCY_MINIMUM
        return Finding(
            name,
            FAIL,
            f"{found}: the stack takes {asked}, leaving fewer than {UNRESERVED_CONCURRENCY_MINIMUM} unreserved, "
            "which Lambda refuses (the deploy fails on the first function or alias that asks)",
            f"lower worker_reserved_concurrency, worker_provisioned_concurrency or api_provisioned_concurrency "
            f"to take at most {max(unreserved - UNRESERVED_CONCURRENCY_MINIMUM, 0)} in all, or request "
            f"'Concurrent executions' of at least {needed} (Service Quotas, AWS Lambda, L-B99A9384)",
        )
    if (
        config.dispatch == "sqs"
        and config.worker_reserved_concurrency is None
        and (config.worker_max_concurrency >= unreserved)
    ):
        return Finding(
            name,
            WARN,
            f"{found}: with dispatch=sqs, worker_max_concurrency={config.worker_max_concurrency} lets the worker "
            "take the whole unreserved pool, and the API functions are throttled (429) while it does",
            f"-c worker_max_concurrency={max(unreserved // 2, 2)} (or reserve concurrency for the worker)",
        )
    if total < config.lambda_account_concurrency:
        return Finding(
            name,
            WARN,
            f"{found}: less than lambda_account_concurrency={config.lambda_account_concurrency}; jobs and API "
            "calls beyond it are throttled",
            f"-c lambda_account_concurrency={total}, and ask for a quota increase if you need more",
        )
    return Finding(name, OK, found)


def check_owner_index(clients: ClientFactory, config: AppConfig) -> Finding:
    name = "owner index"
    try:
        table = jobs_table_of(clients("cloudformation"), config.stack_name)
        indexes = None if table is None else indexes_of(clients("dynamodb"), table)
    except ClientError as error:
        return Finding(name, WARN, f"could not read the deployed stack ({_error_code(error)})")
    verdict, found = upgrade_step(indexes, config.keep_legacy_owner_index)
    return Finding(
        name, {"ok": OK, "warn": WARN, "fail": FAIL}[verdict], found, UPGRADE_STEPS if verdict == "fail" else ""
    )


def check_alarm_email(config: AppConfig) -> Finding:
    if config.alarm_email:
        return Finding("alarm e-mail", OK, f"{config.alarm_email} (confirm the subscription e-mail SNS sends)")
    return Finding(
        "alarm e-mail",
        WARN,
        "none: alarms reach the SNS topic but nobody is told",
        "-c alarm_email=ops@example.com, or subscribe something to the AlarmTopicArn output",
    )


def run_checks(config: AppConfig, clients: ClientFactory, region: str) -> list[Finding]:
    """Every check, in order; the account's checks are skipped without credentials."""
    identity, account = check_identity(clients, region)
    findings = [identity]
    if account is not None:
        findings += [
            check_bootstrap(clients, account, region),
            check_api_gateway_role(clients, config),
            check_powertools_layer(clients, config, region),
            check_concurrency(clients, config),
            check_owner_index(clients, config),
        ]
    return [*findings, check_alarm_email(config)]


def _clients_of(session: boto3.session.Session) -> ClientFactory:
    def client(service: str) -> Any:
        return session.client(service)  # type: ignore[call-overload]  # one factory for every service

    return client


def main(argv: list[str] | None = None, clients: ClientFactory | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make doctor", description="Read-only preflight before cdk deploy.")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--region", help="default: your AWS configuration's region")
    args = parser.parse_args(argv)
    try:
        config = AppConfig.from_mapping(parse_context(args.context))
    except (ConfigError, ValueError) as error:
        print(f"[FAIL] settings: {error}")
        return 1
    session = boto3.session.Session(region_name=args.region)
    region: str | None = session.region_name  # None when nothing names one
    if region is None:
        print(
            Finding(
                "region", FAIL, "none configured", "set AWS_DEFAULT_REGION (or your profile's region), or pass --region"
            ).line()
        )
        return 1
    findings = run_checks(config, clients or _clients_of(session), region)
    for finding in findings:
        print(finding.line())
    failed = [f for f in findings if f.verdict == FAIL]
    print(
        f"{len(failed)} of {len(findings)} checks failed: fix them before cdk deploy" if failed else "ready to deploy"
    )
    return 1 if failed else 0
