"""Shared fixtures: fake servers on 127.0.0.1 and settings that point the real clients at them."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from bot.config import Settings, load_settings
from bot.services import Services, build_services
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.helpers import API_KEY
from tests.slack_harness import QUICK_POSTS, RunningBot, slack_environ

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients must talk to the fakes directly (Slack's socket client ignores NO_PROXY)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def test_environ(tmp_path: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    """The environment a test process of the bot gets: everything points at the fakes."""
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crystals.db'}",
        "OPENAI_TIMEOUT": "10",
        "OPENAI_MAX_RETRIES": "2",
    }


@pytest.fixture
def make_settings(tmp_path: Path, test_environ: dict[str, str]) -> Callable[..., Settings]:
    def make(**overrides: str) -> Settings:
        return load_settings(environ={**test_environ, **overrides}, env_file=tmp_path / ".env")

    return make


@pytest.fixture
def make_services(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Services]]:
    built: list[Services] = []

    def make(**overrides: str) -> Services:
        built.append(build_services(make_settings(**overrides)))
        return built[-1]

    yield make
    for services in built:
        services.close()


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server (scripts/postgres.sh starts one)."""
    import psycopg

    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("TEST_DATABASE_URL is not set: run the tests with bash scripts/test.sh")
        pytest.skip("no PostgreSQL server: run the tests with bash scripts/test.sh")
    name = f"crystals_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"{server.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that uses it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crystals.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def start_bot(fake_slack: FakeSlack, fake_openai: FakeOpenAI,
              make_settings: Callable[..., Settings]) -> Iterator[Callable[..., RunningBot]]:
    running: list[RunningBot] = []

    def start(post_interval: float = QUICK_POSTS, **overrides: str) -> RunningBot:
        """The bot with these settings; `post_interval`: its pace in one channel (Slack's is 1 s)."""
        settings = make_settings(**{**slack_environ(fake_slack), "OPENAI_MAX_RETRIES": "1", **overrides})
        running.append(RunningBot.start(fake_slack, fake_openai, settings, post_interval))
        return running[-1]

    yield start
    for bot in running:
        bot.stop()
