"""The two OpenAI wire formats and what a model accepts, as pure functions.

bot/prompt.py builds every request in the Responses API's shape. Here it is
- stripped of the features a model refuses (`without`): temperature, log-probabilities, reasoning
  effort, structured output. A small table of model families seeds what is known
  (`initial_refusals`); the rest is learned from the API's own 400 error (`refused_feature`);
- translated to Chat Completions when the server speaks only that (`to_chat`): images as data URLs
  in `image_url` parts, the JSON schema as `response_format`, `instructions` as a system message.
Replies from either API are read in bot/classifier.py.
"""
from __future__ import annotations

import json
import re
from typing import Any

RESPONSES, CHAT = "responses", "chat"
ENDPOINTS = {RESPONSES: "/v1/responses", CHAT: "/v1/chat/completions"}

# features a request may carry that some models or servers refuse
TEMPERATURE, LOGPROBS, REASONING, SCHEMA = "temperature", "logprobs", "reasoning", "schema"

# reasoning models (gpt-5 family, o-series): no temperature, no log-probabilities, a reasoning effort
_REASONING_MODEL = re.compile(r"^(?:[\w.-]+/)?(?:gpt-5|o[134])(?:$|[-.])")

# the parameter an API error names -> the feature to leave out
_PARAMETER_FEATURES = {
    "temperature": TEMPERATURE,
    "top_logprobs": LOGPROBS, "logprobs": LOGPROBS, "include": LOGPROBS,
    "reasoning": REASONING, "reasoning.effort": REASONING, "reasoning_effort": REASONING,
    "response_format": SCHEMA, "text.format": SCHEMA, "text": SCHEMA,
}
_QUOTED = re.compile(r"'([\w.]+)'")


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING_MODEL.match(model))


def initial_refusals(model: str) -> frozenset[str]:
    """What a model is known to refuse before it has refused anything: reasoning models take no
    temperature or log-probabilities; other models are not sent a reasoning effort."""
    return frozenset({TEMPERATURE, LOGPROBS}) if is_reasoning_model(model) else frozenset({REASONING})


def refused_feature(param: str | None, message: str, request: dict[str, Any]) -> str | None:
    """The feature a 400 error refuses, if the request carries it: from the error's `param`, else
    from a quoted parameter name in its message ("Unsupported parameter: 'temperature' ...")."""
    names = [param] if param else []
    names += _QUOTED.findall(message or "")
    for name in names:
        feature = _PARAMETER_FEATURES.get(name)
        if feature and feature in features_of(request):
            return feature
    return None


def features_of(request: dict[str, Any]) -> set[str]:
    """The refusable features a Responses-shaped request carries."""
    present = {TEMPERATURE: "temperature" in request, LOGPROBS: "top_logprobs" in request or "include" in request,
               REASONING: "reasoning" in request, SCHEMA: "format" in request.get("text", {})}
    return {feature for feature, there in present.items() if there}


def without(request: dict[str, Any], refused: frozenset[str]) -> dict[str, Any]:
    """The request minus the refused features. Without structured output, the schema goes into
    the instructions, so the model still knows what JSON to write."""
    kept = dict(request)
    if TEMPERATURE in refused:
        kept.pop("temperature", None)
    if LOGPROBS in refused:
        kept.pop("top_logprobs", None)
        kept.pop("include", None)
    if REASONING in refused:
        kept.pop("reasoning", None)
    text_format = kept.get("text", {}).get("format")
    if SCHEMA in refused and text_format:
        kept.pop("text")
        answer_in_json = ("Answer with one JSON object and nothing else, following this JSON schema:\n"
                          + json.dumps(text_format["schema"]))
        kept["instructions"] = "\n\n".join(filter(None, [kept.get("instructions"), answer_in_json]))
    return kept


def to_chat(request: dict[str, Any]) -> dict[str, Any]:
    """A Responses-shaped request as a Chat Completions request."""
    messages: list[dict[str, Any]] = []
    if request.get("instructions"):
        messages.append({"role": "system", "content": request["instructions"]})
    messages += [{"role": message["role"], "content": [_chat_part(item) for item in message["content"]]}
                 for message in request["input"]]
    chat: dict[str, Any] = {"model": request["model"], "messages": messages}
    if "temperature" in request:
        chat["temperature"] = request["temperature"]
    if "top_logprobs" in request:
        chat["logprobs"] = True
        chat["top_logprobs"] = request["top_logprobs"]
    if "reasoning" in request:
        chat["reasoning_effort"] = request["reasoning"]["effort"]
    text_format = request.get("text", {}).get("format")
    if text_format and text_format.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            "name": text_format["name"], "strict": text_format.get("strict", True), "schema": text_format["schema"]}}
    return chat


def _chat_part(item: dict[str, Any]) -> dict[str, Any]:
    if item["type"] == "input_image":
        return {"type": "image_url", "image_url": {"url": item["image_url"], "detail": item.get("detail", "auto")}}
    return {"type": "text", "text": item["text"]}


def for_api(request: dict[str, Any], api: str) -> dict[str, Any]:
    """The request body for `api` (the Responses shape as it is, or translated)."""
    return to_chat(request) if api == CHAT else request
