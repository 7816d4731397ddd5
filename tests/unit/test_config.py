import re
from typing import Any

import pytest

from stacks.config import AppConfig, ConfigError, cdk_json_context, default_context


def test_cdk_json_defaults_are_valid():
    config = AppConfig.from_mapping({})
    assert config.stage == "dev"  # the default stage
    assert config.worker_timeout_seconds == 900
    assert config.max_attempts == config.worker_retry_attempts + 1
    assert config.worker_reserved_concurrency is None
    assert config.alarm_email is None


@pytest.mark.parametrize(
    ("stage", "removal", "retention", "level", "rate", "waf"),
    [("dev", "destroy", 7, "debug", 20, False), ("prod", "retain", 365, "info", 100, True)],
)
def test_stage_presets(stage, removal, retention, level, rate, waf):
    config = AppConfig.from_mapping({"stage": stage})
    assert (config.removal_policy, config.log_retention_days, config.log_level) == (removal, retention, level)
    assert (config.api_throttle_rate_limit, config.waf_enabled) == (rate, waf)


def test_a_command_line_value_wins_over_the_stage_preset():
    config = AppConfig.from_mapping({"stage": "prod", "removal_policy": "destroy", "waf_enabled": "false"})
    assert (config.removal_policy, config.waf_enabled) == ("destroy", False)


def test_an_unknown_stage_is_refused():
    with pytest.raises(ConfigError, match="context 'stage' must be one of dev, prod, got 'qa'"):
        AppConfig.from_mapping({"stage": "qa"})


def test_command_line_strings_are_parsed():
    # `cdk deploy -c worker_timeout_seconds=600` arrives as a string
    config = AppConfig.from_mapping({"worker_timeout_seconds": "600", "worker_reserved_concurrency": "5"})
    assert config.worker_timeout_seconds == 600
    assert config.worker_reserved_concurrency == 5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("worker_timeout_seconds", 901),  # Lambda's maximum is 15 minutes
        ("worker_retry_attempts", 3),  # Lambda allows 0-2
        ("api_integration_timeout_seconds", 30),
        ("removal_policy", "snapshot"),
        ("alarm_email", "not-an-address"),
        ("log_retention_days", 10),  # not a period CloudWatch Logs accepts
        ("api_stage_name", "v1/beta"),
        ("worker_memory_mb", "lots"),
    ],
)
def test_bad_values_are_refused_with_their_name(name, value):
    with pytest.raises(ConfigError, match=name):
        AppConfig.from_mapping({name: value})


def test_inline_limits_must_fit_one_dynamodb_item():
    with pytest.raises(ConfigError, match="DynamoDB item"):
        AppConfig.from_mapping({"max_request_bytes": 200 * 1024, "max_inline_result_bytes": 200 * 1024})


def test_every_setting_has_a_default_in_cdk_json():
    defaults = default_context()
    from dataclasses import fields

    assert {f.name for f in fields(AppConfig)} - {"stage", "tuning"} <= set(defaults)  # tuning: jobs/settings.py


def test_every_setting_is_in_cdk_json_and_documented_in_the_configuration_page():
    import re
    from pathlib import Path

    from jobs.settings import Tuning, declarations
    from stacks.config import PARSERS

    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    table = page.split("| setting | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = {row.split("|")[1]: row.split("|")[2] for row in table.strip().splitlines()[1:]}
    documented = {name: default for cell, default in rows.items() for name in re.findall(r"`([a-z0-9_]+)`", cell)}
    tuning = declarations(Tuning)
    for name in PARSERS:
        assert name in default_context(), name  # its default's one home
        assert name in documented, f"{name} is not in docs/configuration.md's table"
    for name, declaration in tuning.items():
        assert name not in default_context(), f"{name}'s default is declared in jobs/settings.py, not cdk.json"
        assert name in documented, f"{name} is not in docs/configuration.md's table"
        assert f"{declaration.default:,}".replace(",", "") in documented[name].replace(",", ""), name
    assert set(documented) <= set(PARSERS) | set(tuning), set(documented) - set(PARSERS) - set(tuning)


def test_a_tuning_choice_is_checked_at_synth_with_the_runtimes_bounds():
    assert AppConfig.from_mapping({"retry_after_seconds": "7"}).tuning.retry_after_seconds == 7
    assert AppConfig.from_mapping({}).tuning.retry_after_seconds == 2  # the declared default
    with pytest.raises(ConfigError, match="context 'retry_after_seconds' must be between 1 and 3600, got 0"):
        AppConfig.from_mapping({"retry_after_seconds": 0})


@pytest.mark.parametrize("raw", [True, "3_600", "\u0663\u0660\u0660", " 300 ", "+300", "1e3", 300.5, "300.0", []])
def test_a_mistyped_integer_setting_fails_loudly(raw: Any):
    with pytest.raises(ConfigError, match="context 'retry_after_seconds' must be an integer"):
        AppConfig.from_mapping({"retry_after_seconds": raw})


@pytest.mark.parametrize("raw", [30, "30", 30.0])
def test_an_integer_setting_takes_a_number_or_its_digits(raw: Any):
    assert AppConfig.from_mapping({"retry_after_seconds": raw}).tuning.retry_after_seconds == 30


def test_a_result_url_may_not_promise_to_outlive_the_credentials_that_sign_it():
    assert AppConfig.from_mapping({"result_url_expiry_seconds": 3600}).tuning.result_url_expiry_seconds == 3600
    with pytest.raises(ConfigError, match="context 'result_url_expiry_seconds' must be between 1 and 3600, got 86400"):
        AppConfig.from_mapping({"result_url_expiry_seconds": 86_400})


def test_the_reapers_deadline_outlasts_any_live_attempt():
    config = AppConfig.from_mapping({"worker_max_event_age_seconds": 600, "reaper_slack_seconds": 0})
    assert config.stuck_after_seconds == 600 + config.worker_timeout_seconds


def test_reserved_concurrency_leaves_lambdas_unreserved_minimum():
    assert AppConfig.from_mapping({"worker_reserved_concurrency": 900}).worker_reserved_concurrency == 900
    with pytest.raises(ConfigError, match="must leave 100 of the account's Lambda concurrency"):
        AppConfig.from_mapping({"worker_reserved_concurrency": 901})
    raised = {"worker_reserved_concurrency": 4900, "lambda_account_concurrency": 5000}
    assert AppConfig.from_mapping(raised).worker_reserved_concurrency == 4900


def test_stepfunctions_inline_results_fit_a_state():
    assert AppConfig.from_mapping({"max_inline_result_bytes": 200 * 1024}).tuning.max_inline_result_bytes == 200 * 1024
    with pytest.raises(ConfigError, match="256 KiB"):
        AppConfig.from_mapping({"dispatch": "stepfunctions", "max_inline_result_bytes": 200 * 1024})
    largest = {"dispatch": "stepfunctions", "max_inline_result_bytes": 126_976}
    assert AppConfig.from_mapping(largest).tuning.max_inline_result_bytes == 126_976


def test_sqs_mapping_never_polls_more_than_the_worker_may_run():
    with pytest.raises(ConfigError, match="worker_max_concurrency must not exceed worker_reserved_concurrency"):
        AppConfig.from_mapping({"dispatch": "sqs", "worker_reserved_concurrency": 2, "worker_max_concurrency": 10})
    fits = {"dispatch": "sqs", "worker_reserved_concurrency": 10, "worker_max_concurrency": 10}
    assert AppConfig.from_mapping(fits).worker_reserved_concurrency == 10
    assert AppConfig.from_mapping({"worker_reserved_concurrency": 2}).worker_reserved_concurrency == 2  # lambda


def test_websocket_pushes_fit_one_message():
    with pytest.raises(ConfigError, match="128 KB"):
        AppConfig.from_mapping({"notify": "websocket", "max_inline_result_bytes": 200_000})
    assert AppConfig.from_mapping({"notify": "websocket"}).tuning.max_inline_result_bytes == 65536


def test_provisioned_api_concurrency_leaves_lambdas_unreserved_minimum():
    # Three API functions, each with its provisioned environments, out of the same pool.
    fits = {"api_cold_start": "provisioned", "api_provisioned_concurrency": 300}
    assert AppConfig.from_mapping(fits).api_provisioned_concurrency == 300
    with pytest.raises(ConfigError, match=r"api_provisioned_concurrency times 3 API functions \(903\)"):
        AppConfig.from_mapping({**fits, "api_provisioned_concurrency": 301})
    with pytest.raises(ConfigError, match="must leave 100"):
        AppConfig.from_mapping({**fits, "api_provisioned_concurrency": 100, "worker_reserved_concurrency": 601})
    # Not counted unless chosen: the setting keeps its default for a later switch.
    assert AppConfig.from_mapping({"api_provisioned_concurrency": 400}).api_cold_start == "none"


def test_worker_provisioned_concurrency_fits_its_reserved_concurrency_and_the_account():
    chosen = {"worker_cold_start": "provisioned", "worker_provisioned_concurrency": 5}
    assert AppConfig.from_mapping({**chosen, "worker_reserved_concurrency": 5}).worker_provisioned_concurrency == 5
    with pytest.raises(ConfigError, match=r"worker_provisioned_concurrency \(5\) must not exceed"):
        AppConfig.from_mapping({**chosen, "worker_reserved_concurrency": 4})
    with pytest.raises(ConfigError, match=r"worker's reserved or provisioned concurrency \(901\)"):
        AppConfig.from_mapping({**chosen, "worker_provisioned_concurrency": 901})


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"dispath": "sqs"}, "unknown setting 'dispath' in context: did you mean 'dispatch'?"),
        ({"worker_timeout": 60}, "did you mean 'worker_timeout_seconds'?"),
        ({"retry_after": 5}, "did you mean 'retry_after_seconds'?"),  # a runtime (Tuning) setting
        ({"zzz": 1}, "unknown setting 'zzz' in context (docs"),
    ],
)
def test_a_mistyped_setting_fails_with_the_closest_known_name(context: dict[str, Any], message: str):
    # Ignored, it would leave the default in place without a word (dispatch=lambda, not sqs).
    with pytest.raises(ConfigError, match=re.escape(message)):
        AppConfig.from_mapping(context)


def test_cdks_own_context_keys_are_left_to_cdk():
    cdk_keys = {
        "@aws-cdk/core:stackResourceLimit": 500,
        "aws:cdk:enable-path-metadata": True,
        "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"],
        "acknowledged-issue-numbers": [1],
    }
    assert AppConfig.from_mapping(cdk_keys).dispatch == "lambda"


def test_a_mistyped_setting_in_cdk_json_is_refused_too():
    file = cdk_json_context()
    settings = {**file["settings"], "dispath": "sqs"}
    with pytest.raises(ConfigError, match=re.escape("unknown setting 'dispath' in cdk.json's settings")):
        AppConfig.from_mapping({"settings": settings})
    stages = {**file["stages"], "prod": {**file["stages"]["prod"], "waf_enable": True}}
    with pytest.raises(ConfigError, match="in the 'prod' stage: did you mean 'waf_enabled'"):
        AppConfig.from_mapping({"stages": stages})


def test_every_setting_in_cdk_json_is_known():
    file = cdk_json_context()
    assert set(file["settings"]) <= AppConfig.known_settings()
    assert all(set(preset) <= AppConfig.known_settings() for preset in file["stages"].values())
