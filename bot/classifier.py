"""The one place that calls the model: cache first, then a bounded, retried, timed-out API call.

Retries of 429, 5xx, timeouts and dropped connections (with exponential backoff that honours
Retry-After) are the openai SDK's own; `max_retries` and `timeout` come from the settings. Every
failure reaches callers as a ModelError whose message a lab member can act on.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import openai

from bot.answer import AnswerError, TokenLogprob, parse_answer
from bot.config import Settings
from bot.models import Call, Image, Usage
from bot.pricing import PriceTable
from bot.redact import redact_url, redact_urls
from bot.prompt import ModelOptions, PromptSet, classification_request, fingerprint
from bot.store import Store

log = logging.getLogger(__name__)


class ModelError(Exception):
    """A model call failed; str() is a short message for the person who asked.

    `retryable`: the same request may well succeed later (429, 5xx, timeout, dropped connection,
    a malformed answer), so the job queue tries again within its budget.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ModelReply:
    """The parts of a Responses API answer the bot uses."""

    text: str
    logprobs: tuple[TokenLogprob, ...]
    usage: Usage
    model: str


def make_openai_client(settings: Settings) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
    )


def model_options(settings: Settings) -> ModelOptions:
    return ModelOptions(settings.openai_model, settings.openai_temperature, settings.openai_image_detail,
                        settings.openai_logprobs)


class Classifier:
    """Classifies images with the prompt set, caching every call in the store."""

    def __init__(self, client: openai.OpenAI, prompt_set: PromptSet, options: ModelOptions, *, store: Store,
                 prices: PriceTable, max_side: int, concurrency: int) -> None:
        self.client = client
        self.prompt_set = prompt_set
        self.options = options
        self.store = store
        self.prices = prices
        self.fingerprint = fingerprint(prompt_set, options, max_side)
        self._slots = threading.BoundedSemaphore(concurrency)

    @classmethod
    def from_settings(cls, settings: Settings, prompt_set: PromptSet, store: Store, prices: PriceTable) -> Classifier:
        return cls(make_openai_client(settings), prompt_set, model_options(settings), store=store, prices=prices,
                   max_side=settings.max_image_side, concurrency=settings.model_concurrency)

    def cached(self, image: Image) -> Call | None:
        return self.store.find_call(image.sha256, self.fingerprint, self.options.model)

    def classify(self, image: Image) -> Call:
        """The stored call for this image, prompt and model, or a new one from the model."""
        cached = self.cached(image)
        if cached:
            return cached
        reply = self.respond(classification_request(self.prompt_set, image, self.options))
        try:
            answer = parse_answer(reply.text, self.prompt_set.labels, logprobs=reply.logprobs)
        except AnswerError as error:
            log.error("model answer for %s broke the schema: %s; answer was %r", image.name, error, reply.text)
            raise ModelError("The model's answer did not follow the expected format, so no category is given. "
                             "Try again; if it keeps happening, check the model setting.", retryable=True) from error
        call = answer.call(self.options.model, reply.usage, self.prices.cost(reply.model, reply.usage))
        return self.store.save_call(image, call, self.fingerprint)

    def respond(self, request: dict[str, Any]) -> ModelReply:
        """One Responses API call, bounded by the concurrency limit; errors become ModelError."""
        with self._slots:
            try:
                response = self.client.responses.create(**request)
            except openai.APIError as error:
                log.error("model call failed: %s", redact_urls(repr(error)))
                raise ModelError(describe_api_error(error, self.client), retryable=is_transient(error)) from error
        return read_reply(response)


def read_reply(response: Any) -> ModelReply:
    """Text, label-token logprobs and usage out of a Responses API response object."""
    parts = [part for item in response.output if item.type == "message" for part in item.content]
    refusals = [part.refusal for part in parts if part.type == "refusal"]
    if refusals:
        raise ModelError(f"The model declined to answer: {refusals[0]}", retryable=False)
    texts = [part for part in parts if part.type == "output_text"]
    if not texts:
        raise ModelError(f"The model returned no answer (status {response.status}). Try again.", retryable=True)
    logprobs = tuple(
        TokenLogprob(bytes(token.bytes), token.logprob) for part in texts for token in (part.logprobs or [])
    )
    usage = response.usage
    return ModelReply(
        text="".join(part.text for part in texts),
        logprobs=logprobs,
        usage=Usage(
            input_tokens=usage.input_tokens if usage else 0,
            cached_tokens=usage.input_tokens_details.cached_tokens if usage and usage.input_tokens_details else 0,
            output_tokens=usage.output_tokens if usage else 0,
        ),
        model=response.model,
    )


def is_transient(error: openai.APIError) -> bool:
    """Worth trying again later: timeouts, dropped connections, 429 and 5xx."""
    return isinstance(error, (openai.APIConnectionError, openai.RateLimitError)) or (
        isinstance(error, openai.APIStatusError) and error.status_code >= 500)


def describe_api_error(error: openai.APIError, client: openai.OpenAI) -> str:
    """What a lab member should know about a failed model call (never the key, the request or a URL's
    credentials)."""
    retries = f"after {client.max_retries} retries" if client.max_retries else "(retries are off)"
    if isinstance(error, openai.APITimeoutError):
        return f"The model did not answer in time ({client.timeout} s) {retries}. Try again later."
    if isinstance(error, openai.APIConnectionError):
        return f"Could not reach the model service at {redact_url(str(client.base_url))} {retries}. Try again later."
    if isinstance(error, openai.AuthenticationError):
        return "The model service refused the API key (401): an admin should check OPENAI_API_KEY."
    if isinstance(error, openai.RateLimitError):
        return f"The model service is rate-limiting us (429) {retries}. Try again in a few minutes."
    if isinstance(error, openai.APIStatusError) and error.status_code >= 500:
        return f"The model service failed (HTTP {error.status_code}) {retries}. Try again later."
    if isinstance(error, openai.APIStatusError):
        return f"The model service rejected the request (HTTP {error.status_code}): {redact_urls(error.message)[:200]}"
    return f"The model call failed: {type(error).__name__}."
