"""Shared fixtures: fake servers on 127.0.0.1 and settings that point the real clients at them."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from bot.config import Settings, load_settings
from bot.services import Services, build_services
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.helpers import API_KEY
from tests.slack_harness import RunningBot, slack_environ

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
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def start_bot(fake_slack: FakeSlack, fake_openai: FakeOpenAI,
              make_settings: Callable[..., Settings]) -> Iterator[Callable[..., RunningBot]]:
    """start(**setting overrides): the bot, in this process, against the fakes; stopped after the test."""
    running: list[RunningBot] = []

    def start(**overrides: str) -> RunningBot:
        running.append(RunningBot.start(fake_slack, fake_openai, make_settings(**slack_environ(fake_slack), **overrides)))
        return running[-1]

    yield start
    for bot in running:
        bot.stop()
