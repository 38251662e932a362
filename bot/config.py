"""The one place that reads configuration: the environment and `.env`, validated once at start.

Every setting, its default and its meaning is listed in SETTINGS (and in docs/settings.md). A missing or
invalid value stops the program with one message naming every variable to fix.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlparse

from dotenv import dotenv_values

from bot.ratelimit import parse_duration
from bot.redact import redact_urls
from bot.screens.grid import GridSize
from bot.store import is_postgres_url, sqlite_path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
USER_ID = re.compile(r"[UW][A-Z0-9]+")


class ConfigError(Exception):
    """Raised with a message meant for a person: what to set and how."""


@dataclass(frozen=True)
class Settings:
    openai_api_key: str
    openai_base_url: str
    openai_model: str
    openai_temperature: float
    openai_image_detail: str
    openai_timeout: float
    openai_max_retries: int
    openai_logprobs: bool
    openai_api: str
    openai_reasoning_effort: str
    model_concurrency: int
    model_wait_in_worker_seconds: float
    model_breaker_failures: int
    model_probe_seconds: float
    model_outage_max: float
    service_notice_delay_seconds: float
    service_notice_check_seconds: float
    max_image_side: int
    max_image_pixels: int
    image_resampling: str
    jpeg_quality: int
    max_decode_pixels: int
    max_download_mb: int
    download_timeout: float
    max_zip_download_mb: int
    max_zip_images: int
    max_zip_members: int
    max_zip_total_mb: int
    max_zip_member_mb: int
    max_zip_ratio: float
    database_url: str
    prompts_dir: Path
    examples_dir: Path
    prices_file: Path
    log_level: str
    slack_bot_token: str
    slack_app_token: str
    slack_signing_secret: str
    slack_api_url: str
    host: str
    port: int
    health_port: int | None
    metrics_token: str
    slack_listener_workers: int
    job_workers: int
    follow_up_history_chars: int
    max_question_chars: int
    allowed_channels: frozenset[str]
    job_lease_seconds: float
    job_max_attempts: int
    job_retry_seconds: float
    shutdown_grace_seconds: float
    keep_events_days: float
    keep_images_days: float
    database_pool_size: int
    database_wait_seconds: float
    monthly_budget_usd: float | None
    hits_channel: str
    max_examples_per_category: int
    example_editors: frozenset[str]
    plate_batch: bool
    plate_batch_poll_seconds: float
    membership_cache_seconds: float
    max_screen_kb: int
    grid_sizes: tuple[GridSize, ...]
    grid_concentration_step: float
    grid_ph_step: float


def _whole_number(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be a whole number of 0 or more")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a whole number of 1 or more")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not 0 < number < float("inf"):  # also refuses nan
        raise ValueError("must be a number above 0")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 <= number < float("inf"):
        raise ValueError("must be a number of seconds, 0 or more")
    return number


def _duration(value: str) -> float:
    """`6h`, `90m`, `45s`, `1h30m` or a number of seconds -> seconds."""
    seconds = parse_duration(value)
    if seconds is None or not 0 < seconds < float("inf"):
        raise ValueError("must be a duration above 0, like 6h, 90m, 45s or a number of seconds")
    return seconds


def _temperature(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 2:
        raise ValueError("must be between 0 and 2")
    return number


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _jpeg_quality(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 95:
        raise ValueError("must be a whole number from 1 to 95")
    return number


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ValueError("must be an http(s) URL")
    return value


def _slack_api_url(value: str) -> str:
    return _http_url(value).rstrip("/") + "/"  # slack_sdk wants the trailing slash


def _database_url(value: str) -> str:
    if not is_postgres_url(value):
        sqlite_path(value)
    return value


def _id_list(value: str) -> frozenset[str]:
    """`C0123, C0456` -> channel or user ids (empty: no restriction)."""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _user_ids(value: str) -> frozenset[str]:
    """`U0123ABCD, W0456EFGH` -> Slack user ids (empty: no list); a name instead of an id is refused,
    since it would quietly match nobody."""
    ids = _id_list(value)
    wrong = sorted(part for part in ids if not USER_ID.fullmatch(part))
    if wrong:
        raise ValueError(f"{', '.join(wrong)} is not a Slack user id (U0123ABCD: in Slack, a person's profile, "
                         "⋮, Copy member ID)")
    return ids


def _grid_sizes(value: str) -> tuple[GridSize, ...]:
    """`4x6,8x12` -> the grids offered under a hit (rows x columns, 2 to 16 rows, 2 to 24 columns)."""
    sizes = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        found = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", part, re.IGNORECASE)
        if not found or not (2 <= int(found[1]) <= 16 and 2 <= int(found[2]) <= 24):
            raise ValueError(f"{part!r} is not a grid like 4x6 (rows x columns, 2 to 16 rows, 2 to 24 columns)")
        sizes.append(GridSize(int(found[1]), int(found[2])))
    if not sizes or len(sizes) > 4:
        raise ValueError("must name one to four grids, like 4x6,8x12")
    return tuple(sizes)


def _step_percent(value: str) -> float:
    """`10` (percent of the hit's concentration) -> 0.1."""
    number = float(value)
    if not 1 <= number <= 50:
        raise ValueError("must be a percentage from 1 to 50")
    return number / 100


def _ph_step(value: str) -> float:
    number = float(value)
    if not 0.05 <= number <= 1:
        raise ValueError("must be a pH step from 0.05 to 1")
    return number


def _optional_port(value: str) -> int | None:
    """`9090` -> 9090; `0` -> any free port; empty: no port."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and int(value) <= 65535):
        raise ValueError("must be a port number from 1 to 65535 (0: any free port), or empty for none")
    return int(value)


def _optional_amount(value: str) -> float | None:
    """`25` -> 25.0 (US dollars); empty: no limit."""
    if not value:
        return None
    number = float(value)
    if not 0 <= number < float("inf"):  # also refuses nan
        raise ValueError("must be an amount of 0 or more (US dollars), or empty for no limit")
    return number


def _project_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _text(value: str) -> str:
    return value


# variable -> (default, parser, help). A default of None means: no default.
SETTINGS: dict[str, tuple[str | None, Callable[[str], object], str]] = {
    "OPENAI_API_KEY": (None, _text, "API key of the model provider (https://platform.openai.com/api-keys)"),
    "OPENAI_BASE_URL": ("https://api.openai.com/v1", _http_url, "any OpenAI-compatible server"),
    "OPENAI_MODEL": ("gpt-4.1", _text, "vision model name"),
    "OPENAI_TEMPERATURE": ("0", _temperature, "sampling temperature, 0 to 2"),
    "OPENAI_IMAGE_DETAIL": ("high", _one_of("low", "high", "auto"), "image detail sent to the model"),
    "OPENAI_TIMEOUT": ("60", _positive_float, "seconds to wait for one model answer"),
    "OPENAI_MAX_RETRIES": ("3", _whole_number,
                           "quick retries of a failed model request (5xx, timeout, dropped connection, broken answer); "
                           "429s are waited out, not retried"),
    "OPENAI_LOGPROBS": ("true", _boolean, "ask for token log-probabilities to derive confidence"),
    "OPENAI_API": ("responses", _one_of("responses", "chat", "auto"),
                   "which API to speak: responses, chat (Chat Completions) or auto (responses, else chat)"),
    "OPENAI_REASONING_EFFORT": ("low", _one_of("default", "none", "minimal", "low", "medium", "high"),
                                "reasoning effort sent to reasoning models (gpt-5*, o1/o3/o4*)"),
    "MODEL_CONCURRENCY": ("64", _positive_int, "model calls in flight at once"),
    "MODEL_WAIT_IN_WORKER_SECONDS": ("20", _seconds,
                                     "a model call waits this long in its worker for the rate limit or the next "
                                     "probe; a longer wait puts its job back in the queue"),
    "MODEL_BREAKER_FAILURES": ("3", _positive_int,
                               "failures of the model service in a row (5xx, timeouts, dropped connections, broken "
                               "answers) after which the bot stops sending and only probes"),
    "MODEL_PROBE_SECONDS": ("30", _positive_float,
                            "while the model service is down, one probe request every this to twice this many seconds"),
    "MODEL_OUTAGE_MAX": ("6h", _duration,
                         "how long images and questions wait for a model service that is down before they end "
                         "failed with a Retry button (6h, 90m, 45s)"),
    "SERVICE_NOTICE_DELAY_SECONDS": ("20", _seconds,
                                     "an upload (or a question) whose model calls still wait for the rate limit or an "
                                     "outage this many seconds after they first had to wait gets one notice in its "
                                     "thread"),
    "SERVICE_NOTICE_CHECK_SECONDS": ("10", _positive_float,
                                     "while an upload with a notice waits, how often the notice is brought up to date "
                                     "(and deleted once the answers are there)"),
    "MAX_IMAGE_SIDE": ("1024", _positive_int, "long side in pixels an image is scaled down to"),
    "MAX_IMAGE_PIXELS": ("36000000", _positive_int, "larger images are refused (decompression bombs)"),
    "MAX_DECODE_PIXELS": ("16000000", _positive_int, "pixels decoded at once across all workers (memory bound)"),
    "IMAGE_RESAMPLING": ("bilinear", _one_of("bilinear", "bicubic", "lanczos"), "filter used to scale images down"),
    "JPEG_QUALITY": ("90", _jpeg_quality, "JPEG quality, 1 to 95, of the images sent to the model"),
    "MAX_DOWNLOAD_MB": ("50", _positive_int, "larger Slack files are refused"),
    "DOWNLOAD_TIMEOUT": ("60", _positive_float, "seconds one Slack file download may take in all"),
    "MAX_ZIP_DOWNLOAD_MB": ("1024", _positive_int, "larger plate zips are refused"),
    "MAX_ZIP_IMAGES": ("1536", _positive_int,
                       "most images classified from one zip (1536 wells x 1 drop, or 384 wells x 4 drops)"),
    "MAX_ZIP_MEMBERS": ("10000", _positive_int, "most files of any kind in one zip"),
    "MAX_ZIP_TOTAL_MB": ("4096", _positive_int, "most uncompressed megabytes of all images of one zip"),
    "MAX_ZIP_MEMBER_MB": ("50", _positive_int, "most uncompressed megabytes of one image in a zip"),
    "MAX_ZIP_RATIO": ("100", _positive_float, "most compression ratio of one zip member (zip bombs)"),
    "DATABASE_URL": ("sqlite:///crystals.db", _database_url,
                     "sqlite:///file.db or postgresql://user:password@host:5432/db for calls, jobs and feedback"),
    "DATABASE_POOL_SIZE": ("10", _positive_int, "PostgreSQL connections per bot process"),
    "DATABASE_WAIT_SECONDS": ("30", _positive_float,
                              "at start, how long to wait for PostgreSQL to take a connection before stopping"),
    "PROMPTS_DIR": ("prompts", _project_path, "instructions and category definitions"),
    "EXAMPLES_DIR": ("examples", _project_path, "few-shot example images and manifest.toml"),
    "PRICES_FILE": ("bot/prices.toml", _project_path, "price table for the cost estimates"),
    "LOG_LEVEL": ("INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR"), "log detail"),
    "SLACK_BOT_TOKEN": ("", _text, "Bot User OAuth Token, xoxb-..."),
    "SLACK_APP_TOKEN": ("", _text, "app-level token with connections:write, xapp-... (Socket Mode)"),
    "SLACK_SIGNING_SECRET": ("", _text, "Signing Secret (HTTP mode)"),
    "SLACK_API_URL": ("https://slack.com/api/", _slack_api_url, "Slack Web API base URL"),
    "HOST": ("0.0.0.0", _text, "address HTTP mode's server and the HEALTH_PORT server listen on"),
    "PORT": ("3000", _positive_int, "HTTP mode port (Slack's requests, and GET /healthz and /metrics)"),
    "HEALTH_PORT": ("", _optional_port,
                    "Socket Mode: port of a small HTTP server answering GET /healthz and /metrics (empty: no "
                    "server; 0: any free port, logged); HTTP mode answers them on PORT"),
    "METRICS_TOKEN": ("", _text, "if set, GET /metrics needs the header `Authorization: Bearer <this>` "
                                 "(empty: /metrics is open to whoever reaches the port)"),
    "SLACK_LISTENER_WORKERS": ("16", _positive_int, "threads that run Slack listeners"),
    "JOB_WORKERS": ("64", _positive_int, "threads that run jobs (images, questions, clicks, plates)"),
    "FOLLOW_UP_HISTORY_CHARS": ("8000", _positive_int, "how much of a thread a follow-up answer sees"),
    "MAX_QUESTION_CHARS": ("4000", _positive_int, "longer questions and thread messages are cut to this"),
    "ALLOWED_CHANNELS": ("", _id_list, "channel ids the bot works in, comma-separated (empty: all)"),
    "JOB_LEASE_SECONDS": ("60", _positive_float, "a job whose process died is taken up again after this"),
    "JOB_MAX_ATTEMPTS": ("5", _positive_int, "tries of a job before its thread gets a Retry button"),
    "JOB_RETRY_SECONDS": ("2", _positive_float, "first wait before a job is tried again; doubles each time"),
    "SHUTDOWN_GRACE_SECONDS": ("20", _positive_float, "on SIGTERM, how long running jobs may finish"),
    "KEEP_EVENTS_DAYS": ("7", _positive_float, "how long event ids are kept for de-duplication"),
    "KEEP_IMAGES_DAYS": ("90", _positive_float, "how long image bytes are kept for follow-up questions"),
    "MONTHLY_BUDGET_USD": ("", _optional_amount,
                           "estimated model spend per calendar month (UTC) after which the bot stops calling "
                           "the model (empty: no limit)"),
    "HITS_CHANNEL": ("", _text, "channel name or id where every hit (a category with hit = true, e.g. crystals) is "
                            "posted too (empty: none)"),
    "MAX_EXAMPLES_PER_CATEGORY": ("3", _whole_number,
                                  "the team's examples (Use as example) used per category, newest first (0: none)"),
    "EXAMPLE_EDITORS": ("", _user_ids, "user ids who may add and remove examples, comma-separated (empty: every "
                        "member who is not a guest; guests never)"),
    "MEMBERSHIP_CACHE_SECONDS": ("120", _positive_float,
                                 "seconds the bot trusts what Slack said about who is in which channel and who is "
                                 "a guest, between the events that keep it true"),
    "PLATE_BATCH": ("false", _boolean, "send every plate through OpenAI's Batch API (half price, results within "
                                       "24 h); without it, the word `batch` in an upload's message does it for one"),
    "PLATE_BATCH_POLL_SECONDS": ("60", _positive_float, "how often a plate's batch is asked whether it is done"),
    "MAX_SCREEN_KB": ("1024", _positive_int, "larger screen files (CSV) are refused"),
    "GRID_SIZES": ("4x6,8x12", _grid_sizes,
                   "optimisation grids offered under a hit, rows x columns (4x6: a 24-well tray, 8x12: 96 wells)"),
    "GRID_CONCENTRATION_STEP": ("10", _step_percent,
                                "an optimisation grid's concentration step, in percent of the hit's concentration"),
    "GRID_PH_STEP": ("0.2", _ph_step, "an optimisation grid's pH step"),
}
_PARSES_EMPTY = (_id_list, _user_ids, _optional_amount, _optional_port)

# What each command needs beyond the defaults: variable -> how to get it.
_BOT_TOKEN = {"SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-...) from OAuth & Permissions"}
REQUIRED = {
    "model": {"OPENAI_API_KEY": "an API key from https://platform.openai.com/api-keys"},
    "socket": {**_BOT_TOKEN,
               "SLACK_APP_TOKEN": "an app-level token (xapp-...) with connections:write, from Basic Information"},
    "http": {**_BOT_TOKEN, "SLACK_SIGNING_SECRET": "the Signing Secret from Basic Information"},
}


def load_settings(*needs: str, environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Read settings from `environ` (default: os.environ) over `.env`, and check what `needs` requires.

    `needs` names entries of REQUIRED: "model" for anything that calls the model, "socket" or
    "http" for the Slack bot. Raises ConfigError listing every problem at once.
    """
    file_values = dotenv_values(env_file or Path.cwd() / ".env")
    merged = {**{k: v for k, v in file_values.items() if v is not None}, **(os.environ if environ is None else environ)}
    problems: list[str] = []
    values: dict[str, object] = {}
    for name, (default, parse, help_text) in SETTINGS.items():
        raw = merged.get(name, "").strip() or default
        if raw is None:
            raw = ""
        try:
            values[name.lower()] = parse(raw) if raw or parse in _PARSES_EMPTY else raw
        except ValueError as error:
            problems.append(f"  {name}={redact_urls(raw)!r}: {redact_urls(str(error))} ({help_text})")
    for need in needs:
        for name, how in REQUIRED[need].items():
            if not merged.get(name, "").strip():
                problems.append(f"  {name} is not set: set it to {how}")
    if problems:
        raise ConfigError(
            "Configuration problem (set these in the environment or in .env; see .env.example):\n" + "\n".join(problems)
        )
    return Settings(**{f.name: values[f.name] for f in fields(Settings)})
