"""bot.config: defaults, `.env` under the environment, and one ConfigError listing every problem
(never showing a secret)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, ConfigError, load_settings

KEY = "sk-test-do-not-print-0123456789"


@pytest.fixture
def settings(tmp_path):
    """load_settings with an explicit environment and a .env file in tmp_path (absent unless written)."""
    env_file = tmp_path / ".env"

    def load(*needs: str, **environ: str):
        return load_settings(*needs, environ=environ, env_file=env_file)

    load.env_file = env_file
    return load


def problem(settings, *needs: str, **environ: str) -> str:
    with pytest.raises(ConfigError) as error:
        settings(*needs, **environ)
    return str(error.value)


def test_defaults(settings):
    s = settings()
    assert s.openai_model == "gpt-4.1"
    assert s.openai_temperature == 0.0
    assert s.openai_base_url == "https://api.openai.com/v1"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.database_url == "sqlite:///crystals.db"
    assert s.openai_logprobs is True
    assert (s.max_image_side, s.max_image_pixels, s.max_decode_pixels) == (1024, 36_000_000, 16_000_000)
    assert s.prompts_dir == PROJECT_ROOT / "prompts"
    assert s.openai_api_key == ""


def test_env_file_is_read_and_the_environment_overrides_it(settings):
    settings.env_file.write_text("OPENAI_MODEL=gpt-4.1-mini\nOPENAI_TEMPERATURE=0.5\nMODEL_CONCURRENCY=4\n")
    from_file = settings()
    assert (from_file.openai_model, from_file.openai_temperature, from_file.model_concurrency) == ("gpt-4.1-mini", 0.5, 4)
    overridden = settings(OPENAI_MODEL="gpt-4o", MODEL_CONCURRENCY="8")
    assert (overridden.openai_model, overridden.openai_temperature, overridden.model_concurrency) == ("gpt-4o", 0.5, 8)


def test_values_are_parsed(settings):
    s = settings(OPENAI_LOGPROBS="off", OPENAI_TIMEOUT="12.5", PORT="8080", DATABASE_URL="sqlite:////var/lib/c.db",
                 PROMPTS_DIR="/srv/prompts", OPENAI_IMAGE_DETAIL="low")
    assert (s.openai_logprobs, s.openai_timeout, s.port, s.openai_image_detail) == (False, 12.5, 8080, "low")
    assert s.database_url == "sqlite:////var/lib/c.db"
    assert s.prompts_dir == Path("/srv/prompts")


def test_model_without_api_key_says_what_to_set_and_where_to_get_it(settings):
    message = problem(settings, "model")
    assert "OPENAI_API_KEY is not set" in message
    assert "https://platform.openai.com/api-keys" in message
    assert settings("model", OPENAI_API_KEY=KEY).openai_api_key == KEY


def test_a_blank_api_key_counts_as_missing(settings):
    assert "OPENAI_API_KEY is not set" in problem(settings, "model", OPENAI_API_KEY="   ")


def test_api_key_from_the_env_file_is_enough(settings):
    settings.env_file.write_text(f"OPENAI_API_KEY={KEY}\n")
    assert settings("model").openai_api_key == KEY


def test_every_problem_is_listed_in_one_message(settings):
    message = problem(settings, "socket", OPENAI_TEMPERATURE="5", MODEL_CONCURRENCY="0", SLACK_BOT_TOKEN="xoxb-1")
    assert "OPENAI_TEMPERATURE='5': must be between 0 and 2" in message
    assert "MODEL_CONCURRENCY='0': must be a whole number of 1 or more" in message
    assert "SLACK_APP_TOKEN is not set" in message and "connections:write" in message
    assert "SLACK_BOT_TOKEN" not in message


def test_http_mode_needs_the_signing_secret(settings):
    message = problem(settings, "http", SLACK_BOT_TOKEN="xoxb-1")
    assert "SLACK_SIGNING_SECRET is not set" in message and "SLACK_APP_TOKEN" not in message


@pytest.mark.parametrize("name, value", [
    ("OPENAI_LOGPROBS", "maybe"), ("OPENAI_IMAGE_DETAIL", "ultra"), ("PORT", "http"), ("OPENAI_MAX_RETRIES", "-1"),
    ("OPENAI_BASE_URL", "api.openai.com/v1"), ("OPENAI_TIMEOUT", "0"), ("LOG_LEVEL", "verbose"),
])
def test_invalid_values_are_refused(settings, name, value):
    assert f"{name}={value!r}" in problem(settings, **{name: value})


def test_slack_api_url_gets_a_trailing_slash(settings):
    assert settings(SLACK_API_URL="http://localhost:8089/api").slack_api_url == "http://localhost:8089/api/"
    assert settings(SLACK_API_URL="http://localhost:8089/api/").slack_api_url == "http://localhost:8089/api/"


def test_sqlite_and_postgresql_databases_are_accepted_and_nothing_else(settings):
    assert settings(DATABASE_URL="postgres://bot:pw@db:5432/crystals").database_url.startswith("postgres://")
    assert settings(DATABASE_URL="postgresql://bot@db/crystals").database_url == "postgresql://bot@db/crystals"
    message = problem(settings, DATABASE_URL="mysql://bot@db/crystals")
    assert "DATABASE_URL" in message and "postgresql://user:password@host:5432/db" in message


def test_the_api_key_never_appears_in_an_error(settings):
    message = problem(settings, "model", "socket", OPENAI_API_KEY=KEY, OPENAI_TEMPERATURE="warm",
                      OPENAI_BASE_URL="not a url")
    assert "OPENAI_TEMPERATURE" in message and "OPENAI_BASE_URL" in message
    assert KEY not in message
    assert KEY[:12] not in message


def test_a_nan_timeout_is_refused(settings):
    assert "OPENAI_TIMEOUT='nan'" in problem(settings, OPENAI_TIMEOUT="nan")


def test_a_refused_url_is_shown_without_its_credentials(settings):
    message = problem(settings, OPENAI_BASE_URL="ftp://lab:hunter2@gateway.example/v1?key=k3y-secret")
    assert "OPENAI_BASE_URL='ftp://***@gateway.example/v1?key=***'" in message
    assert "hunter2" not in message and "k3y-secret" not in message
def test_a_monthly_budget_is_optional_and_never_negative(settings):
    assert settings().monthly_budget_usd is None
    assert settings(MONTHLY_BUDGET_USD="25.5").monthly_budget_usd == 25.5
    assert settings(MONTHLY_BUDGET_USD="0").monthly_budget_usd == 0
    assert "MONTHLY_BUDGET_USD='-3'" in problem(settings, MONTHLY_BUDGET_USD="-3")
    assert "MONTHLY_BUDGET_USD='nan'" in problem(settings, MONTHLY_BUDGET_USD="nan")


def test_the_hits_channel_is_optional(settings):
    assert settings().hits_channel == ""
    assert settings(HITS_CHANNEL=" C0HITS ").hits_channel == "C0HITS"


def test_example_editors_are_user_ids_and_a_name_is_refused(settings):
    assert settings().example_editors == frozenset() and settings().max_examples_per_category == 3
    assert settings(EXAMPLE_EDITORS="U0123ABCD, W0456EFGH").example_editors == {"U0123ABCD", "W0456EFGH"}
    assert settings(MAX_EXAMPLES_PER_CATEGORY="0").max_examples_per_category == 0
    message = problem(settings, EXAMPLE_EDITORS="U0123ABCD, @alice")
    assert "@alice is not a Slack user id (U0123ABCD: in Slack, a person's profile" in message
    assert "MAX_EXAMPLES_PER_CATEGORY='-1'" in problem(settings, MAX_EXAMPLES_PER_CATEGORY="-1")
