"""Any server, any model: Chat Completions, `auto` fallback, models that refuse parameters, reasoning
models, servers without structured output, and the whole Slack bot over Chat Completions. The real
openai client against the fake OpenAI server."""
from __future__ import annotations

import base64
import logging
from typing import Callable, Iterator

import pytest

from bot.config import Settings
from bot.classifier import ModelError
from bot.prompt import ThreadImage
from bot.services import Services
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.helpers import image_bytes
from tests.slack_harness import RunningBot, slack_environ


def classify(services: Services, label: str, number: int):
    return services.classifier.classify(services.normalise(image_bytes(label, number), f"{number}.jpeg"))


def test_classify_and_follow_up_over_chat_completions(make_services, fake_openai: FakeOpenAI) -> None:
    services = make_services(OPENAI_API="chat")
    image = services.normalise(image_bytes("crystals", 10), "10.jpeg")
    fake_openai.label_image(image.jpeg, "crystals")

    call = services.classifier.classify(image)
    answer = services.classifier.follow_up([ThreadImage(image, "Image 10.jpeg: your call was crystals.")],
                                           ["<@U1>: nice"], "why not precipitate?")

    assert (call.label, call.confidence_source, call.confidence) == ("crystals", "logprobs", pytest.approx(0.93))
    assert call.cost_usd and call.usage.input_tokens > 0
    assert fake_openai.responses_requests() == []
    classification, follow_up = fake_openai.chat_requests()
    (user,) = classification["messages"]
    parts = user["content"]
    assert parts[0]["type"] == "text" and "Choose the most appropriate single label" in parts[0]["text"]
    assert parts[-1]["type"] == "image_url" and parts[-1]["image_url"]["detail"] == "high"
    assert base64.b64decode(parts[-1]["image_url"]["url"].removeprefix("data:image/jpeg;base64,")) == image.jpeg
    schema = classification["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["strict"] is True
    assert schema["json_schema"]["schema"]["properties"]["label"]["enum"] == ["clear", "crystals", "precipitate",
                                                                               "other"]
    assert (classification["temperature"], classification["logprobs"], classification["top_logprobs"]) == (0, True, 1)
    assert follow_up["messages"][0]["role"] == "system" and "follow-up question" in follow_up["messages"][0]["content"]
    assert "response_format" not in follow_up
    assert answer.text == fake_openai.follow_up_text
    assert answer.model == "gpt-4.1" and answer.usage.input_tokens > 0 and answer.cost_usd and answer.cost_usd > 0


def test_auto_falls_back_to_chat_completions_once_and_remembers(make_services, fake_openai: FakeOpenAI,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    fake_openai.responses_api = False
    services = make_services(OPENAI_API="auto")
    with caplog.at_level(logging.WARNING):
        first = classify(services, "clear", 236)
        second = classify(services, "other", 1401)

    assert first.label == second.label == "clear"
    paths = [r.path for r in fake_openai.requests]
    assert paths == ["/v1/responses", "/v1/chat/completions", "/v1/chat/completions"]
    assert caplog.text.count("has no Responses API (HTTP 404); using Chat Completions") == 1


def test_a_server_without_responses_says_which_setting_to_change(make_services, fake_openai: FakeOpenAI) -> None:
    fake_openai.responses_api = False
    with pytest.raises(ModelError, match="set OPENAI_API=chat") as raised:
        classify(make_services(), "clear", 236)
    assert raised.value.retryable is False


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_model_that_refuses_temperature_and_logprobs_is_answered_without_a_failed_job(
        make_services, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture, api: str) -> None:
    fake_openai.refuse("vision-x", "temperature", "logprobs")
    services = make_services(OPENAI_MODEL="vision-x", OPENAI_API=api)
    with caplog.at_level(logging.WARNING):
        first = classify(services, "clear", 236)
        second = classify(services, "crystals", 25)

    assert first.label == second.label == "clear"
    assert (first.confidence_source, first.confidence) == ("model", pytest.approx(0.8))
    bodies = fake_openai.chat_requests() if api == "chat" else fake_openai.responses_requests()
    assert len(bodies) == 4  # refused temperature, refused logprobs, answered; the next image: answered at once
    assert "temperature" in bodies[0] and "temperature" not in bodies[1]
    assert all("temperature" not in body and "top_logprobs" not in body and "logprobs" not in body
               for body in bodies[2:])
    assert caplog.text.count("model vision-x refuses temperature") == 1
    assert caplog.text.count("model vision-x refuses logprobs") == 1


def test_reasoning_models_get_a_reasoning_effort_and_no_temperature_or_logprobs(make_services,
                                                                               fake_openai: FakeOpenAI) -> None:
    reasoning = make_services(OPENAI_MODEL="gpt-5-mini", OPENAI_REASONING_EFFORT="minimal")
    classify(reasoning, "clear", 236)
    classify(make_services(), "clear", 236)

    gpt5, gpt41 = fake_openai.responses_requests()
    assert gpt5["reasoning"] == {"effort": "minimal"}
    assert not {"temperature", "top_logprobs", "include"} & set(gpt5)
    assert "reasoning" not in gpt41 and gpt41["temperature"] == 0


def test_a_server_without_structured_output_gets_the_schema_in_words_and_sloppy_json_is_read(
        make_services, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    fake_openai.schema_support = False
    services = make_services(OPENAI_API="chat", OPENAI_MODEL="qwen2.5vl:7b")
    image = services.normalise(image_bytes("crystals", 10), "10.jpeg")
    fake_openai.label_image(image.jpeg, "crystals")
    with caplog.at_level(logging.WARNING):
        call = services.classifier.classify(image)

    assert call.label == "crystals" and call.explanation
    refused, answered = fake_openai.chat_requests()
    assert "response_format" in refused and "response_format" not in answered
    assert answered["messages"][0]["role"] == "system"
    assert "following this JSON schema" in answered["messages"][0]["content"]
    assert "model qwen2.5vl:7b refuses schema" in caplog.text


@pytest.fixture
def chat_bot(fake_slack: FakeSlack, fake_openai: FakeOpenAI,
             make_settings: Callable[..., Settings]) -> Iterator[RunningBot]:
    settings = make_settings(**slack_environ(fake_slack), OPENAI_API="chat")
    bot = RunningBot.start(fake_slack, fake_openai, settings)
    yield bot
    bot.stop()


def test_the_slack_bot_classifies_and_answers_follow_ups_over_chat_completions(chat_bot: RunningBot) -> None:
    name, data = "10.jpeg", image_bytes("crystals", 10)
    chat_bot.openai.label_image(chat_bot.normalised(data, name).jpeg, "crystals")
    event = chat_bot.upload((name, data))

    assert "gem" in chat_bot.wait_until_done(event)
    chat_bot.openai.follow_up_text = "Straight edges and flat faces: crystals, not precipitate."
    chat_bot.say("why not precipitate?", thread_ts=event["ts"])
    call_post, answer = chat_bot.wait_for_posts(event["ts"], 2)

    assert ":gem:" in call_post.params["text"] or "crystals" in call_post.params["text"]
    assert answer.params["text"] == "Straight edges and flat faces: crystals, not precipitate."
    assert chat_bot.openai.responses_requests() == []
    classification, follow_up = chat_bot.openai.chat_requests()
    assert classification["response_format"]["type"] == "json_schema"
    assert follow_up["messages"][1]["content"][1]["type"] == "image_url"

