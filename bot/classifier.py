"""The one place that calls the model: cache first, then a bounded, retried, timed-out API call.

Retries of 429, 5xx, timeouts and dropped connections (with exponential backoff that honours
Retry-After) are the openai SDK's own; `max_retries` and `timeout` come from the settings. Every
failure reaches callers as a ModelError whose message a lab member can act on.

The gateway speaks the Responses API or Chat Completions (OPENAI_API; `auto` falls back from a
server without /responses to Chat Completions and stays there). When a model refuses a parameter
(temperature, log-probabilities, reasoning effort, structured output) with a 400, the gateway logs
it once, remembers it for that model and sends the request again without it: no job fails for it.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

import openai

from bot import wire
from bot.answer import AnswerError, TokenLogprob, parse_answer
from bot.config import Settings
from bot.images import Normalisation
from bot.models import Call, Image, Usage
from bot.pricing import PriceTable
from bot.redact import redact_url, redact_urls
from bot.prompt import (ModelOptions, PromptSet, ThreadImage, classification_request, fingerprint,
                        follow_up_request)
from bot.store import Store
from bot.teaching import choose_examples, team_prompt_examples

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
    """The parts of an answer the bot uses, from either API."""

    text: str
    logprobs: tuple[TokenLogprob, ...]
    usage: Usage
    model: str


@dataclass(frozen=True)
class FollowUpAnswer:
    """A follow-up answer in a thread, with what it cost."""

    text: str
    model: str
    usage: Usage
    cost_usd: float | None


def make_openai_client(settings: Settings) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
    )


def model_options(settings: Settings, model: str | None = None) -> ModelOptions:
    return ModelOptions(model or settings.openai_model, settings.openai_temperature, settings.openai_image_detail,
                        settings.openai_logprobs, settings.openai_api, settings.openai_reasoning_effort)


class ModelGateway:
    """Sends requests to the model API: the API kind, what each model refuses, the concurrency bound."""

    def __init__(self, client: openai.OpenAI, *, api: str, concurrency: int) -> None:
        self.client = client
        self.api_setting = api
        self.api = wire.RESPONSES if api == "auto" else api
        self._refused: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)

    def refused(self, model: str) -> frozenset[str]:
        with self._lock:
            return self._refused.get(model, wire.initial_refusals(model))

    def wire_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """The request as it would be sent now: for the current API, without what the model refuses."""
        return self._shaped(request)[2]

    def _shaped(self, request: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(API, the Responses-shaped request minus refused features, the body for that API)."""
        api = self.api
        sent = wire.without(request, self.refused(request["model"]))
        return api, sent, wire.for_api(sent, api)

    def endpoint(self) -> str:
        return wire.ENDPOINTS[self.api]

    def respond(self, request: dict[str, Any]) -> ModelReply:
        """One answer to a Responses-shaped request, bounded by the concurrency limit; errors become
        ModelError. A refused parameter or a missing /responses (with `auto`) is learned, not failed."""
        with self._slots:
            while True:
                api, sent, body = self._shaped(request)
                try:
                    raw = (self.client.chat.completions.create(**body) if api == wire.CHAT
                           else self.client.responses.create(**body))
                except openai.APIError as error:
                    if isinstance(error, openai.APIStatusError) and self._learn(api, sent, error):
                        continue
                    log.error("model call failed: %s", redact_urls(repr(error)))
                    raise ModelError(describe_api_error(error, self.client), retryable=is_transient(error)) from error
                return read_reply(api, raw)

    def _learn(self, api: str, sent: dict[str, Any], error: openai.APIStatusError) -> bool:
        """Remember what this error teaches (True: send again), or False when it is a real failure."""
        model = sent["model"]
        if (self.api_setting == "auto" and api == wire.RESPONSES and error.status_code in {404, 405}
                and error.code != "model_not_found"):
            with self._lock:
                if self.api == wire.RESPONSES:
                    log.warning("%s has no Responses API (HTTP %s); using Chat Completions from now on",
                                redact_url(str(self.client.base_url)), error.status_code)
                self.api = wire.CHAT
            return True
        if error.status_code != 400:
            return False
        feature = wire.refused_feature(error.param, error.message, sent)
        if feature is None:
            return False
        with self._lock:
            known = self._refused.get(model, wire.initial_refusals(model))
            if feature not in known:
                log.warning("model %s refuses %s (%s); leaving it out from now on", model, feature, redact_urls(error.message))
                self._refused[model] = known | {feature}
        return True


@dataclass(frozen=True)
class Prompt:
    """The prompt set a classification is sent with, and its fingerprint (the cache key's prompt part)."""

    prompt_set: PromptSet
    fingerprint: str


class Classifier:
    """Classifies images with a prompt set and a model, caching every call in the store.

    With `team_examples` (MAX_EXAMPLES_PER_CATEGORY, for the bot's own prompt) the examples the team
    added in Slack join the prompt set's: they are looked up before every classification, so an
    example added or removed in any process counts from the next image on.
    """

    def __init__(self, gateway: ModelGateway, prompt_set: PromptSet, options: ModelOptions, *, store: Store,
                 prices: PriceTable, normalisation: Normalisation, team_examples: int = 0) -> None:
        self.gateway = gateway
        self.prompt_set = prompt_set  # without the team's examples: labels, schema, follow-up wording
        self.options = options
        self.store = store
        self.prices = prices
        self.team_examples = team_examples
        self._normalisation = normalisation
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], tuple[threading.Lock, int]] = {}  # (image, prompt) -> lock, users
        self._current: tuple[tuple[int, ...], Prompt] = ((), Prompt(prompt_set, fingerprint(prompt_set, options,
                                                                                             normalisation)))

    @property
    def client(self) -> openai.OpenAI:
        return self.gateway.client

    def prompt(self) -> Prompt:
        """The prompt set to classify with now: the files' examples plus the team's in use."""
        if not self.team_examples:
            return self._current[1]
        chosen = choose_examples(self.store.team_examples(), self.prompt_set.labels, self.team_examples)
        key = tuple(example.id for example in chosen)
        with self._lock:
            if self._current[0] == key:
                return self._current[1]
        prompt_set = replace(self.prompt_set, examples=self.prompt_set.examples + team_prompt_examples(
            chosen, self.store.example_images(key)))
        prompt = Prompt(prompt_set, fingerprint(prompt_set, self.options, self._normalisation))
        with self._lock:
            self._current = (key, prompt)
        return prompt

    def cached(self, image: Image, prompt: Prompt | None = None) -> Call | None:
        fingerprint_now = (prompt or self.prompt()).fingerprint
        return self.store.find_call(image.sha256, fingerprint_now, self.options.model)

    def request(self, image: Image, prompt: Prompt | None = None) -> dict[str, Any]:
        """The Responses-shaped classification request for this image."""
        return classification_request((prompt or self.prompt()).prompt_set, image, self.options)

    def classify(self, image: Image, prompt: Prompt | None = None) -> Call:
        """The stored call for this image, prompt and model, or a new one from the model. The same image
        asked for by several workers at once is sent once; the others get that call from the cache."""
        prompt = prompt or self.prompt()
        with self._one_at_a_time((image.sha256, prompt.fingerprint)):
            return self.cached(image, prompt) or self._ask_model(image, prompt)

    @contextmanager
    def _one_at_a_time(self, key: tuple[str, str]) -> Iterator[None]:
        with self._lock:
            lock, users = self._in_flight.get(key, (threading.Lock(), 0))
            self._in_flight[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._in_flight[key]
                if users == 1:
                    del self._in_flight[key]
                else:
                    self._in_flight[key] = (lock, users - 1)

    def _ask_model(self, image: Image, prompt: Prompt) -> Call:
        reply = self.respond(self.request(image, prompt))
        try:
            answer = parse_answer(reply.text, self.prompt_set.labels, schema=self.prompt_set.schema,
                                  logprobs=reply.logprobs)
        except AnswerError as error:
            log.error("model answer for %s broke the schema: %s; answer was %r", image.name, error, reply.text)
            raise ModelError("The model's answer did not follow the expected format, so no category is given. "
                             "Try again; if it keeps happening, check the model setting.", retryable=True) from error
        call = answer.call(self.options.model, reply.usage, self.prices.cost(reply.model, reply.usage))
        return self.store.save_call(image, call, prompt.fingerprint)

    def follow_up(self, images: Sequence[ThreadImage], transcript: Sequence[str], question: str) -> FollowUpAnswer:
        """An answer to a question in a thread, with its usage and estimated cost."""
        reply = self.respond(follow_up_request(self.prompt_set, self.options, images, transcript, question))
        return FollowUpAnswer(reply.text, self.options.model, reply.usage, self.prices.cost(reply.model, reply.usage))

    def respond(self, request: dict[str, Any]) -> ModelReply:
        """One model answer to a Responses-shaped request (see ModelGateway.respond)."""
        return self.gateway.respond(request)


def read_responses(response: Any) -> ModelReply:
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
    details = usage.input_tokens_details if usage else None
    return ModelReply(
        text="".join(part.text for part in texts),
        logprobs=logprobs,
        usage=Usage(input_tokens=usage.input_tokens if usage else 0,
                    cached_tokens=(details.cached_tokens or 0) if details else 0,
                    output_tokens=usage.output_tokens if usage else 0),
        model=response.model,
    )


def read_chat(completion: Any) -> ModelReply:
    """Text, logprobs and usage out of a Chat Completions response object."""
    if not completion.choices:
        raise ModelError("The model returned no answer. Try again.", retryable=True)
    choice = completion.choices[0]
    if choice.message.refusal:
        raise ModelError(f"The model declined to answer: {choice.message.refusal}", retryable=False)
    if not choice.message.content:
        raise ModelError(f"The model returned no answer (finish reason {choice.finish_reason}). Try again.",
                         retryable=True)
    tokens = (choice.logprobs.content or []) if choice.logprobs else []
    logprobs = tuple(TokenLogprob(bytes(t.bytes) if t.bytes is not None else t.token.encode(), t.logprob)
                     for t in tokens)
    usage = completion.usage
    details = usage.prompt_tokens_details if usage else None
    return ModelReply(
        text=choice.message.content,
        logprobs=logprobs,
        usage=Usage(input_tokens=usage.prompt_tokens if usage else 0,
                    cached_tokens=(details.cached_tokens or 0) if details else 0,
                    output_tokens=usage.completion_tokens if usage else 0),
        model=completion.model,
    )


def read_reply(api: str, raw: Any) -> ModelReply:
    return read_chat(raw) if api == wire.CHAT else read_responses(raw)


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
    if isinstance(error, openai.NotFoundError) and error.code != "model_not_found" \
            and error.request.url.path.endswith("/responses"):
        return ("The model service has no Responses API (HTTP 404): an admin should set OPENAI_API=chat "
                "(or auto) for this server.")
    if isinstance(error, openai.APIStatusError) and error.status_code >= 500:
        return f"The model service failed (HTTP {error.status_code}) {retries}. Try again later."
    if isinstance(error, openai.APIStatusError):
        return f"The model service rejected the request (HTTP {error.status_code}): {redact_urls(error.message)[:200]}"
    return f"The model call failed: {type(error).__name__}."
