"""bot.plates.retry: which wells a Retry failed wells click takes, its button's value read as input, the
summary while retrying, the same drop in two inspections."""
from __future__ import annotations

import pytest

from bot.models import Job
from bot.plates.retry import (RETRY_WELLS_ACTION, WellsRetry, is_unreadable, parse_wells_retry, same_drop,
                              wells_to_retry)


def job(job_id: int, state: str, kind: str = "plate_image", **payload) -> Job:
    return Job(id=job_id, kind=kind, channel="C1", message_ts="1.1", thread_ts="1.1", file_id=f"k{job_id}",
               file_name="x", user_id="U1", state=state, error=None, call_id=None, reply_ts=None, attempts=1,
               payload={"path": f"{job_id}.jpg", **payload})


def test_only_failed_images_that_were_read_are_retried() -> None:
    jobs = [job(1, "done", sha256="a"), job(2, "failed", sha256="b"), job(3, "failed", error="truncated"),
            job(4, "received", sha256="c"), job(5, "failed", kind="plate")]
    assert [j.id for j in wells_to_retry(jobs)] == [2]
    assert is_unreadable(jobs[2]) and not is_unreadable(jobs[1])


def test_the_button_value_round_trips() -> None:
    retry = WellsRetry(42, 3)
    (button,) = retry.button()["elements"]
    assert button["action_id"] == RETRY_WELLS_ACTION and button["text"]["text"] == "Retry failed wells"
    assert parse_wells_retry(button["value"]) == retry


@pytest.mark.parametrize("value", ["", "42", "42:", ":3", "42:3:1", "x:1", "-1:0", "4 2:0", "٤٢:0", "1" * 19 + ":0",
                                   "42:3 ", "42:+3", "1e3:0"])
def test_a_value_that_is_not_one_is_refused(value: str) -> None:
    assert parse_wells_retry(value) is None


def test_same_drop_needs_the_same_well_and_drop() -> None:
    assert same_drop(job(1, "done", well="B3", drop=1), job(2, "done", well="B3", drop=1))
    assert not same_drop(job(1, "done", well="B3", drop=1), job(2, "done", well="B3", drop=2))
    assert not same_drop(job(1, "done", well=None, drop=None), job(2, "done", well=None, drop=None))
