"""The one place that calls the model: cache first, then a paced, bounded, timed-out API call.

Every request is admitted by bot/provider.py's ModelService first: one budget shared by every
process (the key's limits learned from the x-ratelimit-* headers, each request's estimated tokens
spent before it is sent) and a circuit breaker for outages. The openai SDK's own retries are off for
model calls (its `max_retries` stays for files and batches), so nothing is sent behind the budget's
back; the gateway decides:
- a 429 is waited out, never a failure (but `insufficient_quota`, an account out of credit, is one);
- a failure of the service (5xx, a timeout, a dropped connection, an answer cut off or outside the
  schema) is tried again OPENAI_MAX_RETRIES times after a short backoff. Then, in the bot, an open
  breaker makes the job wait for the service (ProviderWait: no attempt spent, up to
  MODEL_OUTAGE_MAX), a closed one means this request keeps failing while the service answers
  others (ModelError, retryable: the job's attempts); from the terminal it is the error;
- a 400 is tried once more; the same again is a lasting error, as are 401, 403, 404 and a spent
  quota: a ModelError whose message a lab member can act on.
The log gets one line per failed request, never a traceback for what the provider did.

The gateway speaks the Responses API or Chat Completions (OPENAI_API; `auto` falls back from a
server without /responses to Chat Completions and stays there). When a model refuses a parameter
(temperature, log-probabilities, reasoning effort, structured output) with a 400, the gateway logs
it once, remembers it for that model and sends the request again without it: no job fails for it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import openai
import pydantic

from bot import wire
from bot.answer import Answer, AnswerError, TokenLogprob, parse_answer, typical_output_tokens
from bot.config import Settings
from bot.images import Normalisation
from bot.models import Call, Image, Usage
from bot.pricing import PriceTable, request_tokens
from bot.provider import ModelService, TooLarge
from bot.ratelimit import Priority, refusal_limit
from bot.service_state import Outcome, ServiceState
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


class BrokenAnswer(ModelError):
    """The service answered, but with no usable answer (nothing in it, a body cut off)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


T = TypeVar("T")
FOLLOW_UP_OUTPUT_TOKENS = 400  # the expected length of a follow-up answer, spent from the budget before sending
BACKOFF = 0.5  # seconds before the first retry of a failed request; doubles each time
MAX_BACKOFF = 8.0


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


@dataclass(frozen=True)
class _Answered:
    value: Any
    usage: Usage
    headers: Mapping[str, str]
    lasting: ModelError | None = None  # the service answered, but the model declined


@dataclass(frozen=True)
class _Failed:
    outcome: Outcome
    what: str  # for people: "HTTP 500", "no answer within 60 s"
    detail: str  # for the log
    headers: Mapping[str, str] | None = None
    message: str = ""  # the error's message (a 429's says the limit)
    error: openai.APIStatusError | None = None
    schema: bool = False  # the answer broke the schema (rather than being cut off)
    told: str = ""  # what to tell people, when the failure says it better than its status


class ModelGateway:
    """Sends requests to the model API: the API kind, what each model refuses, the concurrency bound,
    the shared budget and breaker (ModelService), the retries."""

    def __init__(self, client: openai.OpenAI, *, api: str, concurrency: int, service: ModelService,
                 max_retries: int) -> None:
        self.client = client
        self.service = service
        self.max_retries = max_retries
        self.api_setting = api
        self.api = wire.RESPONSES if api == "auto" else api
        self._calls = client.with_options(max_retries=0)  # every retry is ours, through the budget
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

    def respond(self, request: dict[str, Any], *, output_tokens: int, priority: Priority = Priority.BULK,
                read: Callable[[ModelReply], T] = lambda reply: reply) -> T:  # type: ignore[assignment,return-value]
        """`read` of the answer to a Responses-shaped request of about `output_tokens` answer tokens (an
        AnswerError from `read` is a broken answer), paced with its `priority` (INTERACTIVE: a person waits
        for it). Raises ModelError, or ProviderWait in the bot. A refused parameter or a missing /responses
        (with `auto`) is learned, not failed."""
        input_estimate = request_tokens(request)
        key = request_key(request)
        tries: Counter[str] = Counter()  # failures of the service; 400s
        with self._slots:
            while True:
                api, sent, body = self._shaped(request)
                try:
                    permit = self.service.admit(request["model"], key, input_estimate, output_tokens, priority)
                except TooLarge as error:
                    raise ModelError(str(error), retryable=False) from None
                try:
                    result = self._attempt(api, body, read)
                except BaseException:
                    self.service.abandon(permit)
                    raise
                if isinstance(result, _Answered):
                    self.service.finish(permit, Outcome.ANSWERED, headers=result.headers, usage=result.usage)
                    if result.lasting:
                        raise result.lasting
                    return result.value
                state = self.service.finish(permit, result.outcome, headers=result.headers, message=result.message,
                                            what=result.what)
                self._try_again_or_raise(api, sent, result, state, tries)

    def _try_again_or_raise(self, api: str, sent: dict[str, Any], failed: _Failed, state: ServiceState,
                            tries: Counter[str]) -> None:
        """After a request that brought no answer: return to send it again (after a backoff), or raise
        what the caller gets (ProviderWait in an outage, else a ModelError)."""
        if failed.outcome is Outcome.RATE_LIMITED:
            return
        if failed.error is not None and self._learn(api, sent, failed.error):
            return
        if failed.outcome.is_failure:
            tries["failures"] += 1
            if tries["failures"] <= self.max_retries:
                delay = min(MAX_BACKOFF, BACKOFF * 2 ** (tries["failures"] - 1)) * (1 + 0.25 * random.random())
                log.warning("model request failed: %s; trying again in %.1f s", failed.detail, delay)
                self.service.pause(delay)
                return
            log.warning("model request failed: %s; %s retries spent", failed.detail, self.max_retries)
            if state.breaker.is_open and self.service.patience is not None:
                raise self.service.outage_wait(sent["model"], state.breaker)
            raise ModelError(self._describe(failed), retryable=True)
        if failed.error is not None and failed.error.status_code == 400 and not tries["bad_requests"]:
            tries["bad_requests"] += 1
            log.warning("model request refused: %s; trying once more", failed.detail)
            return
        log.error("model call failed: %s", failed.detail)
        raise ModelError(self._describe(failed), retryable=False)

    def _attempt(self, api: str, body: dict[str, Any], read: Callable[[ModelReply], Any]) -> _Answered | _Failed:
        """Send once; the answer read, or what went wrong."""
        try:
            raw = (self._calls.chat.completions.with_raw_response.create(**body) if api == wire.CHAT
                   else self._calls.responses.with_raw_response.create(**body))
        except openai.APIStatusError as error:
            return _status_failure(error)
        except openai.APITimeoutError:
            waited = f"no answer within {self.client.timeout} s"
            return _Failed(Outcome.TIMEOUT, waited, waited)
        except openai.APIConnectionError as error:
            cause = type(error.__cause__).__name__ if error.__cause__ else "no connection"
            return _Failed(Outcome.UNREACHABLE, "the connection failed",
                           f"could not reach {redact_url(str(self.client.base_url))} ({cause})")
        try:
            reply = read_reply(api, raw.parse())
        except BrokenAnswer as error:
            return _Failed(Outcome.BROKEN_ANSWER, "a broken answer", str(error), raw.headers)
        except ModelError as error:  # the model declined: it answered, and will again
            return _Answered(None, Usage(), raw.headers, error)
        except (ValueError, TypeError, AttributeError, KeyError, pydantic.ValidationError) as error:
            return _Failed(Outcome.BROKEN_ANSWER, "a broken answer",
                           f"the answer could not be read ({type(error).__name__}: {clip_line(str(error))})",
                           raw.headers)
        try:
            return _Answered(read(reply), reply.usage, raw.headers)
        except AnswerError as error:
            return _Failed(Outcome.BROKEN_ANSWER, "answers outside the schema",
                           f"the model answer broke the schema: {error}; answer was {clip_line(reply.text)!r}",
                           raw.headers, schema=True)

    def _describe(self, failure: _Failed) -> str:
        if failure.told:
            return failure.told
        if failure.error is not None or failure.outcome in (Outcome.TIMEOUT, Outcome.UNREACHABLE):
            return describe_failure(failure.outcome, failure.error, self.client, self.max_retries)
        if failure.schema:
            return ("The model's answer did not follow the expected format, so no category is given. "
                    "Try again; if it keeps happening, check the model setting.")
        return f"The model service sent answers that were cut off or empty {retries_text(self.max_retries)}. " \
               "Try again later."

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


def _status_failure(error: openai.APIStatusError) -> _Failed:
    status, message = error.status_code, said(error)
    code = f" ({error.code})" if error.code else ""
    detail, headers = f"HTTP {status}{code}: {clip_line(message)}", error.response.headers
    if status == 429:
        if error.code == "insufficient_quota":
            return _Failed(Outcome.QUOTA, "the account is out of credit", detail, headers, message, error)
        refusal = refusal_limit(message)
        if refusal and refusal.requested and refusal.requested > refusal.limit:  # no wait lets it through
            return _Failed(Outcome.REFUSED, "request too large", detail, headers, message, error,
                           told=str(TooLarge(refusal.requested, refusal.limit)))
        return _Failed(Outcome.RATE_LIMITED, "rate limited", detail, headers, message)
    if status >= 500 or status in (408, 409):
        return _Failed(Outcome.SERVER_ERROR, f"HTTP {status}", detail, headers, message, error)
    return _Failed(Outcome.REFUSED, f"HTTP {status}", detail, headers, message, error)


def request_key(request: dict[str, Any]) -> str:
    """What identifies a request across its job's runs (for the time reserved for it): the model and
    the last item asked about (the query image, the question)."""
    last = request["input"][-1]["content"][-1] if request.get("input") else {}
    return hashlib.sha256(json.dumps([request["model"], last], sort_keys=True).encode()).hexdigest()[:32]


def clip_line(text: str, limit: int = 200) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[:limit] + "..."


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

    def classify(self, image: Image, prompt: Prompt | None = None, priority: Priority = Priority.BULK) -> Call:
        """The stored call for this image, prompt and model, or a new one from the model (paced with
        `priority`). The same image asked for by several workers at once is sent once; the others get that
        call from the cache."""
        prompt = prompt or self.prompt()
        with self._one_at_a_time((image.sha256, prompt.fingerprint)):
            return self.cached(image, prompt) or self._ask_model(image, prompt, priority)

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

    def _ask_model(self, image: Image, prompt: Prompt, priority: Priority) -> Call:
        def read(reply: ModelReply) -> tuple[Answer, ModelReply]:
            return parse_answer(reply.text, self.prompt_set.labels, schema=self.prompt_set.schema,
                                logprobs=reply.logprobs), reply

        answer, reply = self.gateway.respond(self.request(image, prompt), read=read, priority=priority,
                                             output_tokens=typical_output_tokens(self.prompt_set.answer_fields))
        call = answer.call(self.options.model, reply.usage, self.prices.cost(reply.model, reply.usage))
        return self.store.save_call(image, call, prompt.fingerprint)

    def follow_up(self, images: Sequence[ThreadImage], transcript: Sequence[str], question: str) -> FollowUpAnswer:
        """An answer to a question in a thread (someone waits for it: interactive), with its usage and cost."""
        reply = self.gateway.respond(follow_up_request(self.prompt_set, self.options, images, transcript, question),
                                     output_tokens=FOLLOW_UP_OUTPUT_TOKENS, priority=Priority.INTERACTIVE)
        return FollowUpAnswer(reply.text, self.options.model, reply.usage, self.prices.cost(reply.model, reply.usage))


def read_responses(response: Any) -> ModelReply:
    """Text, label-token logprobs and usage out of a Responses API response object."""
    parts = [part for item in response.output if item.type == "message" for part in item.content]
    refusals = [part.refusal for part in parts if part.type == "refusal"]
    if refusals:
        raise ModelError(f"The model declined to answer: {refusals[0]}", retryable=False)
    texts = [part for part in parts if part.type == "output_text"]
    if not texts:
        raise BrokenAnswer(f"The model returned no answer (status {response.status}). Try again.")
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
        raise BrokenAnswer("The model returned no answer. Try again.")
    choice = completion.choices[0]
    if choice.message.refusal:
        raise ModelError(f"The model declined to answer: {choice.message.refusal}", retryable=False)
    if not choice.message.content:
        raise BrokenAnswer(f"The model returned no answer (finish reason {choice.finish_reason}). Try again.")
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
    """Worth trying again later (for the client's own calls: batches, files): timeouts, dropped
    connections, a rate limit (not a spent quota) and 5xx."""
    if isinstance(error, openai.APIStatusError):
        return _status_failure(error).outcome in (Outcome.RATE_LIMITED, Outcome.SERVER_ERROR)
    return isinstance(error, openai.APIConnectionError)


def retries_text(retries: int) -> str:
    return f"after {retries} retries" if retries else "(retries are off)"


def describe_failure(outcome: Outcome, error: openai.APIError | None, client: openai.OpenAI, retries: int) -> str:
    """What a lab member should know about a failed model call (never the key, the request or a URL's
    credentials)."""
    after = retries_text(retries)
    if outcome is Outcome.TIMEOUT:
        return f"The model did not answer in time ({client.timeout} s) {after}. Try again later."
    if outcome is Outcome.UNREACHABLE:
        return f"Could not reach the model service at {redact_url(str(client.base_url))} {after}. Try again later."
    if outcome is Outcome.RATE_LIMITED:
        return f"The model service is rate-limiting us (429) {after}. Try again in a few minutes."
    if outcome is Outcome.QUOTA:
        return ("The model service says this account is out of credit (insufficient_quota): an admin should "
                "check the plan and billing of the API key.")
    if isinstance(error, openai.AuthenticationError):
        return "The model service refused the API key (401): an admin should check OPENAI_API_KEY."
    if isinstance(error, openai.NotFoundError) and error.code != "model_not_found" \
            and error.request.url.path.endswith("/responses"):
        return ("The model service has no Responses API (HTTP 404): an admin should set OPENAI_API=chat "
                "(or auto) for this server.")
    if isinstance(error, openai.APIStatusError) and outcome is Outcome.SERVER_ERROR:
        return f"The model service failed (HTTP {error.status_code}) {after}. Try again later."
    if isinstance(error, openai.APIStatusError):
        return f"The model service rejected the request (HTTP {error.status_code}): {clip_line(said(error))}"
    return f"The model call failed {after}. Try again later."


def said(error: openai.APIStatusError) -> str:
    """What the service's error body says (not the SDK's wrapping of it), without URL credentials."""
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    return redact_urls(message if isinstance(message, str) and message else error.message)


def describe_api_error(error: openai.APIError, client: openai.OpenAI) -> str:
    """What a lab member should know about a failed call of the client's own (files, batches)."""
    if isinstance(error, openai.APIStatusError):
        outcome = _status_failure(error).outcome
    else:
        outcome = Outcome.TIMEOUT if isinstance(error, openai.APITimeoutError) else Outcome.UNREACHABLE
    return describe_failure(outcome, error if isinstance(error, openai.APIStatusError) else None, client,
                            client.max_retries)
