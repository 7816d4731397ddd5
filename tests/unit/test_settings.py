import pytest

from jobs.settings import ConfigurationError, Settings


def test_defaults_apply_to_optional_values():
    settings = Settings.from_env({"JOBS_TABLE_NAME": "jobs"})
    assert settings.max_attempts == 3
    assert settings.retry_after_seconds == 2
    assert settings.progress_min_interval_seconds == 2.0
    assert settings.worker_function_name is None


def test_missing_table_name_fails_at_start():
    with pytest.raises(ConfigurationError, match="JOBS_TABLE_NAME"):
        Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"), [("MAX_ATTEMPTS", "0"), ("MAX_ATTEMPTS", "x"), ("RETRY_AFTER_SECONDS", "-1")]
)
def test_malformed_values_fail_at_start(name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({"JOBS_TABLE_NAME": "jobs", name: value})


def test_require_names_the_missing_setting():
    settings = Settings.from_env({"JOBS_TABLE_NAME": "jobs"})
    with pytest.raises(ConfigurationError, match="worker_function_name"):
        settings.require("worker_function_name")
