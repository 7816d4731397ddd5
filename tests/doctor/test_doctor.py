"""``make doctor`` against botocore's Stubber: each AWS answer it may get, and what it says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from doctor import checks
from stacks.config import AppConfig

REGION = "eu-west-1"
# The deployed stack the doctor looks for: the app's name (a fork renames it) and the dev stage.
STACK = AppConfig.from_mapping({}).stack_name
TABLE = f"{STACK}-Jobs"
LAYER_ARN = f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38"


class Account:
    """Stubbed clients answering as one AWS account would; every call must be expected."""

    def __init__(self) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.clients = {
            name: session.client(name) for name in ("sts", "ssm", "apigateway", "lambda", "cloudformation", "dynamodb")
        }
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def __call__(self, service: str) -> Any:
        return self.clients[service]

    def answers(
        self,
        *,
        bootstrap: str | None = "27",
        api_role: str | None = None,
        layer: dict[str, Any] | None = None,
        concurrency: tuple[int, int] = (1000, 1000),
        indexes: dict[str, str] | None = None,
    ) -> Account:
        self.stubs["sts"].add_response("get_caller_identity", {"Account": "123456789012"})
        if bootstrap is None:
            self.stubs["ssm"].add_client_error("get_parameter", "ParameterNotFound")
        else:
            parameter = {"Name": checks.BOOTSTRAP_VERSION_PARAMETER, "Type": "String", "Value": bootstrap}
            self.stubs["ssm"].add_response(
                "get_parameter", {"Parameter": parameter}, {"Name": checks.BOOTSTRAP_VERSION_PARAMETER}
            )
        self.stubs["apigateway"].add_response("get_account", {"cloudwatchRoleArn": api_role} if api_role else {})
        if layer is None:
            layer = {"CompatibleRuntimes": ["python3.14"], "CompatibleArchitectures": ["arm64"], "Version": 38}
        if "error" in layer:
            self.stubs["lambda"].add_client_error("get_layer_version_by_arn", layer["error"])
        else:
            self.stubs["lambda"].add_response("get_layer_version_by_arn", layer, {"Arn": LAYER_ARN})
        total, unreserved = concurrency
        limits = {
            "ConcurrentExecutions": total,
            "UnreservedConcurrentExecutions": unreserved,
            "TotalCodeSize": 1,
            "CodeSizeUnzipped": 1,
            "CodeSizeZipped": 1,
        }
        self.stubs["lambda"].add_response("get_account_settings", {"AccountLimit": limits})
        if indexes is None:  # no stack deployed yet
            self.stubs["cloudformation"].add_client_error(
                "describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist"
            )
        else:
            stack = {
                "StackName": STACK,
                "CreationTime": "2026-11-01T00:00:00Z",
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": "JobsTableName", "OutputValue": TABLE}],
            }
            self.stubs["cloudformation"].add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})
            table = {
                "TableName": TABLE,
                "GlobalSecondaryIndexes": [
                    {"IndexName": name, "IndexStatus": status, "Backfilling": status == "CREATING"}
                    for name, status in indexes.items()
                ],
            }
            self.stubs["dynamodb"].add_response("describe_table", {"Table": table}, {"TableName": TABLE})
        return self


@pytest.fixture
def account() -> Iterator[Account]:
    stubbed = Account()
    for stub in stubbed.stubs.values():
        stub.activate()
    yield stubbed
    for stub in stubbed.stubs.values():
        stub.assert_no_pending_responses()  # every check asked what it should


def doctor(account: Account, capsys: pytest.CaptureFixture, *context: str) -> tuple[int, str]:
    argv = [f"-c{pair}" for pair in context] + ["--region", REGION]
    code = checks.main(argv, clients=account)
    return code, capsys.readouterr().out


def verdicts(output: str) -> dict[str, str]:
    lines = [line for line in output.splitlines() if line.startswith("[")]
    return {line.split("] ", 1)[1].split(":")[0]: line[1:5].strip() for line in lines}


def test_a_ready_account(account, capsys):
    code, out = doctor(account.answers(), capsys, "alarm_email=ops@example.com")
    assert code == 0 and out.rstrip().endswith("ready to deploy")
    assert set(verdicts(out).values()) == {"ok"}
    assert "account 123456789012, region eu-west-1" in out
    assert LAYER_ARN in out


def test_an_account_that_is_not_bootstrapped(account, capsys):
    code, out = doctor(account.answers(bootstrap=None), capsys)
    assert code == 1
    assert verdicts(out)["cdk bootstrap"] == "FAIL"
    assert "fix: npx cdk bootstrap aws://123456789012/eu-west-1" in out


def test_an_old_bootstrap(account, capsys):
    code, out = doctor(account.answers(bootstrap="5"), capsys)
    assert code == 1 and "bootstrap version 5, older than 6" in out


def test_no_api_gateway_role_and_the_stack_told_not_to_create_one(account, capsys):
    code, out = doctor(account.answers(api_role=None), capsys, "apigateway_cloudwatch_role=false")
    assert code == 1
    assert verdicts(out)["API Gateway CloudWatch role"] == "FAIL"
    assert "CloudWatch Logs role ARN must be set in account settings" in out


def test_an_existing_api_gateway_role_is_pointed_out(account, capsys):
    role = "arn:aws:iam::123456789012:role/apigw-logs"
    code, out = doctor(account.answers(api_role=role), capsys)
    assert code == 0 and verdicts(out)["API Gateway CloudWatch role"] == "warn"
    assert role in out and "-c apigateway_cloudwatch_role=false" in out


def test_a_region_without_the_layer_version(account, capsys):
    code, out = doctor(account.answers(layer={"error": "AccessDeniedException"}), capsys)
    assert code == 1 and verdicts(out)["Powertools layer and runtime"] == "FAIL"
    assert "powertools_layer_version" in out


def test_a_layer_built_for_another_runtime(account, capsys):
    layer = {"CompatibleRuntimes": ["python3.13"], "CompatibleArchitectures": ["arm64"]}
    code, out = doctor(account.answers(layer=layer), capsys)
    assert code == 1 and "not python3.14 arm64" in out


def test_reserved_concurrency_the_account_cannot_give(account, capsys):
    code, out = doctor(account.answers(concurrency=(400, 400)), capsys, "worker_reserved_concurrency=350")
    assert code == 1 and verdicts(out)["Lambda concurrency"] == "FAIL"
    assert "take at most 300 in all" in out and "of at least 450 (Service Quotas" in out


@pytest.mark.parametrize(
    ("settings", "asked"),
    [
        # Three API functions with 2 each: 6 out of a new account's 10.
        (("api_cold_start=provisioned", "api_provisioned_concurrency=2"), "6 provisioned for the API functions"),
        (("worker_cold_start=provisioned", "worker_provisioned_concurrency=1"), "1 reserved or provisioned"),
    ],
)
def test_provisioned_concurrency_a_new_account_cannot_hold_fails(account, capsys, settings, asked):
    # Provisioned concurrency leaves 100 unreserved too: CloudFormation would fail on the alias.
    code, out = doctor(account.answers(concurrency=(10, 10)), capsys, *settings)
    assert code == 1 and verdicts(out)["Lambda concurrency"] == "FAIL"
    assert asked in out and "L-B99A9384" in out and "take at most 0 in all" in out


def test_provisioned_concurrency_the_account_can_hold_passes(account, capsys):
    code, out = doctor(
        account.answers(concurrency=(1000, 900)), capsys, "api_cold_start=provisioned", "api_provisioned_concurrency=5"
    )
    assert code == 0 and verdicts(out)["Lambda concurrency"] == "ok"


@pytest.mark.parametrize(("unreserved", "verdict"), [(50, "warn"), (51, "ok")])
def test_a_queue_worker_that_can_take_the_whole_pool_is_warned(account, capsys, unreserved, verdict):
    answers = account.answers(concurrency=(1000, unreserved))
    code, out = doctor(answers, capsys, "dispatch=sqs", "worker_max_concurrency=50")
    assert code == 0 and verdicts(out)["Lambda concurrency"] == verdict
    assert ("API functions are throttled" in out and "-c worker_max_concurrency=25" in out) == (verdict == "warn")


def test_no_alarm_email_is_a_warning(account, capsys):
    code, out = doctor(account.answers(), capsys)
    assert code == 0 and verdicts(out)["alarm e-mail"] == "warn"


def test_bad_settings_fail_before_any_call(capsys):
    assert checks.main(["-c", "worker_reserved_concurrency=5000", "--region", REGION], clients=lambda _: None) == 1
    assert "must leave 100" in capsys.readouterr().out


def test_a_partition_without_the_public_layer():
    assert checks.powertools_layer_arn("cn-north-1", 38) is None
    assert checks.powertools_layer_arn("eu-west-1", 38) == LAYER_ARN


def test_without_credentials_only_the_settings_are_checked(capsys):
    session = boto3.session.Session(region_name=REGION)
    sts = session.client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", "ExpiredToken")
        code = checks.main(["--region", REGION], clients=lambda _service: sts)
    out = capsys.readouterr().out
    assert code == 1 and verdicts(out) == {"credentials": "FAIL", "alarm e-mail": "warn"}


def test_a_stack_with_the_old_owner_index_is_told_to_upgrade_in_two_deploys(account, capsys):
    code, out = doctor(account.answers(indexes={"active-jobs": "ACTIVE", "owner-jobs": "ACTIVE"}), capsys)
    assert code == 1 and verdicts(out)["owner index"] == "FAIL"
    assert "which CloudFormation refuses" in out and "-c keep_legacy_owner_index=true" in out


def test_the_first_upgrade_deploy_keeps_the_old_index(account, capsys):
    code, out = doctor(
        account.answers(indexes={"active-jobs": "ACTIVE", "owner-jobs": "ACTIVE"}),
        capsys,
        "keep_legacy_owner_index=true",
    )
    assert code == 0 and verdicts(out)["owner index"] == "ok" and "python -m doctor.upgrade" in out


def test_the_second_upgrade_deploy_deletes_it(account, capsys):
    code, out = doctor(
        account.answers(indexes={"active-jobs": "ACTIVE", "owner-jobs": "ACTIVE", "owner-shards": "ACTIVE"}), capsys
    )
    assert code == 0 and verdicts(out)["owner index"] == "ok" and "this deploy deletes owner-jobs" in out


def test_an_upgraded_stack_told_to_keep_the_old_index_is_warned(account, capsys):
    code, out = doctor(
        account.answers(indexes={"active-jobs": "ACTIVE", "owner-shards": "ACTIVE"}),
        capsys,
        "keep_legacy_owner_index=true",
    )
    assert code == 0 and verdicts(out)["owner index"] == "warn"


def test_the_old_index_is_not_deleted_while_the_new_one_is_still_being_built(account, capsys):
    building = {"active-jobs": "ACTIVE", "owner-jobs": "ACTIVE", "owner-shards": "CREATING"}
    code, out = doctor(account.answers(indexes=building), capsys)
    assert code == 1 and verdicts(out)["owner index"] == "FAIL"
    assert "owner-shards is still being built (CREATING)" in out


def test_a_stack_without_either_owner_index_cannot_take_both_in_one_deploy(account, capsys):
    code, out = doctor(account.answers(indexes={"active-jobs": "ACTIVE"}), capsys, "keep_legacy_owner_index=true")
    assert code == 1 and "would add two in one update" in out
