"""The model's answer: the schema it must follow, and parsing its JSON into an `Answer`.

The schema puts observations before the label, so the label follows from the evidence rather than
being justified after it. Servers without structured output may wrap the JSON in a Markdown fence,
leave a trailing comma or write the label as " Crystals": such slips are repaired (json_repair,
label matched ignoring case, spaces and separators). An answer that still breaks the schema raises
AnswerError: a label is never guessed at.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import json_repair
from jsonschema import Draft202012Validator

from bot.categories import label_key
from bot.models import Call, Usage

SCHEMA_NAME = "crystallization_call"


class AnswerError(ValueError):
    """The model's answer broke the schema."""


@dataclass(frozen=True)
class Answer:
    label: str
    confidence: float | None
    confidence_source: str  # "logprobs", "model" or "none"
    observations: str
    explanation: str

    def call(self, model: str, usage: Usage, cost_usd: float | None) -> Call:
        return Call(label=self.label, confidence=self.confidence, confidence_source=self.confidence_source,
                    observations=self.observations, explanation=self.explanation, model=model, usage=usage,
                    cost_usd=cost_usd)


@dataclass(frozen=True)
class TokenLogprob:
    token_bytes: bytes
    logprob: float


ANSWER_FIELDS = ("observations", "label", "confidence", "explanation")
TYPICAL_OUTPUT_TOKENS = {"observations": 60, "label": 6, "confidence": 6, "explanation": 40}  # for estimates


def typical_output_tokens(fields: Sequence[str]) -> int:
    """About how many tokens an answer with these fields has (cost estimates, the rate-limit budget)."""
    return sum(TYPICAL_OUTPUT_TOKENS[name] for name in fields)


def answer_schema(labels: Sequence[str], fields: Sequence[str] = ANSWER_FIELDS) -> dict[str, Any]:
    """The JSON schema sent as strict structured output, with `fields` of ANSWER_FIELDS in their order
    (field order matters: evidence first)."""
    properties = {
        "observations": {"type": "string", "description": "What is visible in the drop, before deciding."},
        "label": {"type": "string", "enum": list(labels)},
        "confidence": {"type": "number", "description": "Probability from 0 to 1 that the label is right."},
        "explanation": {"type": "string", "description": "One or two sentences a scientist can check."},
    }
    unknown = [name for name in fields if name not in properties]
    if unknown or "label" not in fields:
        raise ValueError(f"answer fields must include label and come from {', '.join(ANSWER_FIELDS)}: {unknown}")
    chosen = [name for name in ANSWER_FIELDS if name in fields]
    return {"type": "object", "properties": {name: properties[name] for name in chosen}, "required": chosen,
            "additionalProperties": False}


def parse_answer(
    text: str,
    labels: Sequence[str],
    *,
    schema: dict[str, Any] | None = None,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> Answer:
    """Check `text` against `schema` (default: answer_schema(labels)) and the categories.

    The confidence comes from the label's token log-probabilities when given, else from the model's
    own estimate, else it is None (an answer whose schema had no confidence).
    """
    data = read_json(text)
    if isinstance(data, dict) and isinstance(data.get("label"), str):
        data["label"] = matching_label(data["label"], labels)
    problems = sorted(Draft202012Validator(schema or answer_schema(labels)).iter_errors(data), key=str)
    if problems:
        raise AnswerError(f"the answer breaks the schema: {problems[0].message}")
    if data.get("label") not in labels:
        raise AnswerError(f"the answer's label {data.get('label')!r} is not one of {', '.join(labels)}")
    model_confidence = data.get("confidence")
    if model_confidence is not None and not 0 <= model_confidence <= 1:
        raise AnswerError(f"the answer's confidence {model_confidence} is not between 0 and 1")
    from_logprobs = label_probability(text, data["label"], logprobs) if logprobs else None
    if from_logprobs is not None:
        confidence, source = from_logprobs, "logprobs"
    elif model_confidence is not None:
        confidence, source = float(model_confidence), "model"
    else:
        confidence, source = None, "none"
    return Answer(
        label=data["label"],
        confidence=confidence,
        confidence_source=source,
        observations=data.get("observations", ""),
        explanation=data.get("explanation", ""),
    )


def read_json(text: str) -> Any:
    """The JSON in `text`: strict JSON first, else the object in it repaired (fences, trailing
    commas, quotes, a missing closing brace)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        repaired = json_repair.loads(text) if "{" in text else None
        if not isinstance(repaired, dict):
            raise AnswerError(f"the answer is not JSON ({error.msg}): {text[:80]!r}") from None
        return repaired


def matching_label(value: str, labels: Sequence[str]) -> str:
    """The category `value` names ignoring case, spaces and separators ("Crystals " -> "crystals"), else value."""
    return next((label for label in labels if label_key(label) == label_key(value)), value)


_LABEL_VALUE = re.compile(r'(?<!\\)"label"\s*:\s*"([^"\\]*)"')


def label_probability(text: str, label: str, logprobs: Sequence[TokenLogprob]) -> float | None:
    """exp(sum of the log-probabilities of the tokens that spell the label's value), or None.

    None when the tokens do not line up with the text (then the model's own estimate is used).
    """
    match = _LABEL_VALUE.search(text)
    if not match or match.group(1) != label:
        return None
    start = len(text[: match.start(1)].encode())
    end = start + len(label.encode())
    offset, total, covered = 0, 0.0, False
    for token in logprobs:
        token_end = offset + len(token.token_bytes)
        if token_end > start and offset < end:
            total += token.logprob
            covered = True
        offset = token_end
    if offset != len(text.encode()) or not covered:
        return None
    return math.exp(total)
