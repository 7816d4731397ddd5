import pytest

from jobs.settings import ConfigurationError, Settings

REQUIRED = {"APP_NAME": "async-jobs", "JOBS_TABLE_NAME": "jobs"}


def test_defaults_apply_to_optional_values():
    settings = Settings.from_env(REQUIRED)
    assert settings.max_attempts == 3
    assert settings.retry_after_seconds == 2
    assert settings.progress_min_interval_seconds == 2.0
    assert settings.worker_function_name is None


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_missing_required_value_fails_at_start(name):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({other: value for other, value in REQUIRED.items() if other != name})


def test_the_app_name_is_checked_at_start():
    assert Settings.from_env(REQUIRED).app.header == "Async-Jobs"
    with pytest.raises(ConfigurationError, match="APP_NAME"):
        Settings.from_env({**REQUIRED, "APP_NAME": "Async Jobs"})


@pytest.mark.parametrize(
    ("name", "value"), [("MAX_ATTEMPTS", "0"), ("MAX_ATTEMPTS", "x"), ("RETRY_AFTER_SECONDS", "-1")]
)
def test_malformed_values_fail_at_start(name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({**REQUIRED, name: value})


def test_require_names_the_missing_setting():
    settings = Settings.from_env(REQUIRED)
    with pytest.raises(ConfigurationError, match="worker_function_name"):
        settings.require("worker_function_name")
