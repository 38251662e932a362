"""bot.wire: Responses requests as Chat Completions requests, refused features left out, what the
API's 400 errors refuse, which models are reasoning models."""
from __future__ import annotations

import json

import pytest

from bot.wire import (CHAT, LOGPROBS, REASONING, SCHEMA, TEMPERATURE, for_api, initial_refusals, is_reasoning_model,
                      refused_feature, to_chat, without)

SCHEMA_FORMAT = {"type": "json_schema", "name": "call", "strict": True,
                 "schema": {"type": "object", "properties": {"label": {"type": "string", "enum": ["clear"]}}}}
REQUEST = {
    "model": "gpt-4.1",
    "instructions": "Be brief.",
    "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "Classify:"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,AAAA", "detail": "high"},
    ]}],
    "temperature": 0,
    "text": {"format": SCHEMA_FORMAT},
    "include": ["message.output_text.logprobs"],
    "top_logprobs": 1,
    "reasoning": {"effort": "low"},
}


def test_a_responses_request_becomes_a_chat_completions_request():
    chat = to_chat(REQUEST)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Classify:"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA", "detail": "high"}},
        ]},
    ]
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "call", "strict": True, "schema": SCHEMA_FORMAT["schema"]}}
    assert (chat["temperature"], chat["logprobs"], chat["top_logprobs"], chat["reasoning_effort"]) == (0, True, 1, "low")
    assert for_api(REQUEST, "responses") is REQUEST and for_api(REQUEST, CHAT) == chat


def test_refused_features_are_left_out():
    bare = without(REQUEST, frozenset({TEMPERATURE, LOGPROBS, REASONING}))
    assert not {"temperature", "include", "top_logprobs", "reasoning"} & set(bare)
    assert bare["text"] == REQUEST["text"] and "temperature" in REQUEST  # the original is untouched
    chat = to_chat(bare)
    assert not {"temperature", "logprobs", "top_logprobs", "reasoning_effort"} & set(chat)


def test_without_structured_output_the_schema_is_written_into_the_instructions():
    bare = without(REQUEST, frozenset({SCHEMA}))
    assert "text" not in bare
    assert bare["instructions"].startswith("Be brief.\n\nAnswer with one JSON object and nothing else")
    assert bare["instructions"].endswith(json.dumps(SCHEMA_FORMAT["schema"]))
    assert "response_format" not in to_chat(bare)


@pytest.mark.parametrize(("param", "message", "feature"), [
    ("temperature", "Unsupported parameter: 'temperature' is not supported with this model.", TEMPERATURE),
    ("top_logprobs", "Unsupported parameter: 'top_logprobs' is not supported with this model.", LOGPROBS),
    ("reasoning.effort", "Unsupported parameter: 'reasoning.effort' is not supported with this model.", REASONING),
    (None, "Unsupported value: 'temperature' does not support 0 with this model.", TEMPERATURE),
    ("response_format", "response_format of type json_schema is not supported", SCHEMA),
    (None, "Invalid 'input[0].content[1].image_url'.", None),
    ("model", "The model 'nope' does not exist", None),
])
def test_what_a_400_error_refuses(param, message, feature):
    assert refused_feature(param, message, REQUEST) == feature


def test_a_refused_feature_the_request_does_not_carry_is_a_real_error():
    assert refused_feature("temperature", "Unsupported parameter: 'temperature'", without(REQUEST, frozenset({TEMPERATURE}))) is None


@pytest.mark.parametrize(("model", "reasoning"), [
    ("gpt-5", True), ("gpt-5-mini", True), ("gpt-5.1", True), ("o1", True), ("o3-pro", True), ("o4-mini", True),
    ("openai/gpt-5-nano", True), ("gpt-4.1", False), ("gpt-4o", False), ("qwen2.5vl:7b", False), ("o10x", False),
])
def test_the_table_of_reasoning_models_seeds_what_is_refused(model, reasoning):
    assert is_reasoning_model(model) is reasoning
    assert initial_refusals(model) == ({TEMPERATURE, LOGPROBS} if reasoning else {REASONING})
