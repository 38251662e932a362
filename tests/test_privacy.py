"""Private stays private, end to end against the fake Slack and the fake OpenAI, in a workspace with two
people (Alice in everything, Bob not in the private channel), a guest, a public and a private lab
channel and the hits channel: what each person sees on every surface, the hits channel, teaching,
deletion, the bot removed from a channel, and Slack failing to say who is where."""
from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pytest

from bot.render import CONFIRM_ACTION, EXAMPLE_ACTION
from bot.sharing import MEMBERS_ONLY
from bot.teaching import EXAMPLE_REMOVE_ACTION, EXPLANATION_BLOCK, EXPLANATION_INPUT, OTHER_CHANNEL
from bot.visibility import INCOMPLETE_NOTE, NOT_A_MEMBER
from tests.fakes.slack_server import ApiCall
from tests.helpers import image_bytes, prefix_json
from tests.slack_harness import RunningBot, section_text

PUBLIC, PRIVATE, HITS = "C1", "C7LAB", "C0HITS"  # PRIVATE's id starts with C: private is what Slack says
ALICE, BOB, GUEST, BOT = "U1", "U2", "U3", "UBOT"
MARKER = f"PRIV{uuid.uuid4().hex[:10].upper()}"  # in every private file name and explanation
ZIP = {"mimetype": "application/zip", "filetype": "zip"}


@dataclass
class Audit:
    """What each person was sent through payloads of their own: slash command answers, click answers
    (response_url), the modals their clicks opened."""

    envelopes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    response_paths: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    triggers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def record(self, person: str, envelope: str, payload: dict[str, Any]) -> None:
        self.envelopes[person].append(envelope)
        self.response_paths[person].add(urlparse(payload.get("response_url", "")).path)
        self.triggers[person].add(payload.get("trigger_id", ""))


@pytest.fixture
def walls(fake_slack, start_bot):
    """The workspace, and a function that starts the bot in it (again, after a restart)."""
    fake_slack.add_channel("lab", PUBLIC, members=[ALICE, BOB, GUEST, BOT])
    fake_slack.add_channel("secret-lab", PRIVATE, private=True, members=[ALICE, BOT])
    fake_slack.add_channel("crystal-hits", HITS, members=[ALICE, BOB, BOT])
    for person in (ALICE, BOB):
        fake_slack.add_user(person)
    fake_slack.add_user(GUEST, guest=True)

    def start(**overrides: str) -> RunningBot:
        return start_bot(**{"HITS_CHANNEL": HITS, "JOB_RETRY_SECONDS": "0.2", **overrides})

    return start


@pytest.fixture
def audit() -> Audit:
    return Audit()


# --- driving the workspace ------------------------------------------------------------------------


def upload(bot: RunningBot, channel: str, name: str, data: bytes, label: str, text: str, *,
           user: str = ALICE) -> dict[str, Any]:
    """`user` posts an image the model will call `label`, explained with `text`; done once answered."""
    bot.openai.label_image(bot.normalised(data, name).jpeg, label, text)
    event = bot.upload((name, data), channel=channel, user=user)
    bot.wait_until_done(event)
    return event


def private_hit(bot: RunningBot, n: int = 25) -> dict[str, Any]:
    return upload(bot, PRIVATE, f"{MARKER}-drop{n}.jpeg", image_bytes("crystals", n), "crystals",
                  f"{MARKER} needles at the rim")


def public_hit(bot: RunningBot) -> dict[str, Any]:
    return upload(bot, PUBLIC, "public-10.jpeg", image_bytes("crystals", 10), "crystals", "public needles")


def plate_zip(bot: RunningBot, channel: str, name: str, hit_text: str) -> dict[str, Any]:
    """A two-well plate whose A1 is a crystal hit."""
    members = {"A1.jpg": image_bytes("precipitate", 215), "A2.jpg": image_bytes("clear", 236)}
    bot.openai.label_image(bot.normalised(members["A1.jpg"], "A1.jpg").jpeg, "crystals", hit_text)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    event = bot.upload((name, buffer.getvalue()), channel=channel, **ZIP)
    bot.wait_until_done(event)
    return event


def command(bot: RunningBot, audit: Audit, person: str, text: str, channel: str = PUBLIC) -> dict[str, Any]:
    """`person` types `/crystals text` in `channel`; the bot's answer (only they see it)."""
    payload = bot.slack.slash_command_payload(text, channel=channel, user=person)
    envelope = bot.slack.push_slash_command(payload)
    audit.record(person, envelope, payload)
    return bot.slack.wait_for_ack(envelope) or {}


def click(bot: RunningBot, audit: Audit, person: str, action: str, value: str | None, message: dict[str, Any],
          channel: str) -> None:
    payload = bot.slack.block_actions_payload(action, value, message=message, channel=channel, user=person)
    envelope = bot.slack.push_interactive(payload)
    audit.record(person, envelope, payload)
    bot.slack.wait_for_ack(envelope)


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(element for block in message.get("blocks", []) for element in
                [*block.get("elements", []), block.get("accessory") or {}] if element.get("action_id") == action_id)


def reply_to(bot: RunningBot, event: dict[str, Any]) -> dict[str, Any]:
    """The bot's (first) reply to an upload, as a message a click can come from."""
    (reply, *_) = bot.wait_for_posts(event["ts"], 1)
    return {**reply.params, "ts": reply.response["ts"]}


def confirm(bot: RunningBot, audit: Audit, person: str, event: dict[str, Any]) -> dict[str, Any]:
    """`person` confirms the call; the reply as it is after the verdict."""
    reply = reply_to(bot, event)
    updates = len(bot.slack.calls_to("chat.update"))
    click(bot, audit, person, CONFIRM_ACTION, button(reply, CONFIRM_ACTION)["value"], reply, event["channel"])
    updated = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("chat.update")[updates:]
                                          if c.params["channel"] == event["channel"]], what="the verdict shown")[0]
    return {**updated.params, "ts": reply["ts"]}


def use_as_example(bot: RunningBot, audit: Audit, person: str, reviewed: dict[str, Any], channel: str) -> None:
    click(bot, audit, person, EXAMPLE_ACTION, button(reviewed, EXAMPLE_ACTION)["value"], reviewed, channel)


def submit(bot: RunningBot, audit: Audit, person: str, view: dict[str, Any], explanation: str) -> dict[str, Any] | None:
    payload = bot.slack.view_submission_payload(view, {EXPLANATION_BLOCK: {EXPLANATION_INPUT: explanation}},
                                                user=person)
    envelope = bot.slack.push_interactive(payload)
    audit.record(person, envelope, payload)
    return bot.slack.wait_for_ack(envelope)


def deliver(bot: RunningBot, event: dict[str, Any]) -> None:
    """Send an event and wait until the bot has handled it and everything it queued."""
    bot.slack.wait_for_ack(bot.slack.push_event(event))
    bot.drain(timeout=30)


def open_home(bot: RunningBot, person: str) -> dict[str, Any]:
    """`person` opens the Home tab; the view published for them."""
    before = len(bot.slack.calls_to("views.publish"))
    bot.slack.push_event({"type": "app_home_opened", "user": person, "channel": f"D{person}", "tab": "home",
                          "event_ts": f"{time.time():.6f}"})
    (published,) = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("views.publish")[before:]
                                                if c.params["user_id"] == person and c.status == 200],
                                       what=f"{person}'s Home tab")
    return published.params["view"]


def home_text(view: dict[str, Any]) -> str:
    return "\n".join(json.dumps(block, ensure_ascii=False) for block in view["blocks"])


def posts_in(bot: RunningBot, channel: str) -> list[ApiCall]:
    return [c for c in bot.slack.calls_to("chat.postMessage") if c.params["channel"] == channel and c.status == 200]


def sent_to(bot: RunningBot, audit: Audit, person: str) -> str:
    """EVERYTHING the bot sent that `person` can see: messages posted or updated in their channels (the
    hits channel among them) and in their direct messages, files shared there (names, titles, bytes),
    their Home tab, the answers to their commands and clicks, the modals their clicks opened."""
    fake = bot.slack
    theirs = {channel for channel in (PUBLIC, PRIVATE, HITS) if person in fake.members_of(channel)} | {f"D{person}"}
    seen: list[str] = []
    for call in fake.calls:
        params = call.params
        where = params.get("channel") or params.get("channel_id")
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral",
                           "files.completeUploadExternal") and where in theirs:
            seen.append(json.dumps(params))
        elif call.method == "views.publish" and params.get("user_id") == person:
            seen.append(json.dumps(params))
        elif call.method == "views.open" and params.get("trigger_id") in audit.triggers[person]:
            seen.append(json.dumps(params))
    for shared in fake.uploads:
        if shared.channel in theirs:
            seen += [shared.filename, shared.title, (shared.data or b"").decode("latin-1")]
    acks = fake.acks
    seen += [json.dumps(acks.get(envelope)) for envelope in audit.envelopes[person]]
    seen += [json.dumps(body) for path, body in fake.response_url_posts if path in audit.response_paths[person]]
    return "\n".join(seen)


# --- every surface ---------------------------------------------------------------------------------


def test_nothing_from_the_private_channel_reaches_anyone_outside_it_on_any_surface(walls, audit) -> None:
    bot = walls()
    public_hit(bot)
    secret = private_hit(bot)
    plate_zip(bot, PRIVATE, f"{MARKER}-plate.zip", f"{MARKER} a rod in A1")
    reviewed = confirm(bot, audit, ALICE, secret)
    use_as_example(bot, audit, ALICE, reviewed, PRIVATE)
    (form,) = bot.slack.wait_for(bot.slack.opened_views, what="the example form")
    assert submit(bot, audit, ALICE, form, f"{MARKER} rods along the rim") is None
    bot.say(f"why crystals in {MARKER}?", thread_ts=secret["ts"], channel=PRIVATE)
    bot.drain()

    views = {person: open_home(bot, person) for person in (ALICE, BOB, GUEST)}
    answers: dict[str, dict[str, dict[str, Any]]] = {}
    for person in (ALICE, BOB, GUEST):
        answers[person] = {verb: command(bot, audit, person, verb) for verb in
                           ("stats", "recent", "examples", "export", "help", "share-hits")}
    forged = {verb: command(bot, audit, BOB, verb, PRIVATE) for verb in ("stats", "recent", "export", "share-hits on")}
    click(bot, audit, BOB, EXAMPLE_ACTION, button(reviewed, EXAMPLE_ACTION)["value"], reviewed, HITS)  # forged
    bot.drain()
    assert len(bot.slack.opened_views()) == 1  # Alice's form only

    for person in (BOB, GUEST):  # not in the private channel: nothing of it, anywhere
        everything = sent_to(bot, audit, person)
        assert "public-10.jpeg" in everything  # the audit does see what they were sent...
        assert f"D{person}" in {u.channel for u in bot.slack.uploads}  # ...their export's CSV among it
        assert MARKER not in everything and PRIVATE not in everything, person
    everything = sent_to(bot, audit, ALICE)  # the same search finds it for a member: the test can fail
    assert MARKER in everything and MARKER in home_text(views[ALICE])
    assert MARKER in json.dumps(answers[ALICE]["examples"]) and f"<#{PRIVATE}>" in answers[ALICE]["stats"]["text"]

    bob = home_text(views[BOB])
    assert "public-10.jpeg" in bob and "(1 · 1)" in bob  # the public call, counted and listed
    assert "3 more calls and 1 more plate in the last 30 days are from channels you are not in." in bob
    assert "channels you are not in: $" in bob and "channels you are not in: $" in answers[BOB]["stats"]["text"]
    assert OTHER_CHANNEL in json.dumps(answers[BOB]["examples"]) and "1 added by the team" in answers[BOB]["examples"]["text"]
    assert "(1 · 1)" in home_text(views[GUEST])  # a guest in the public channel sees the public call
    assert all(answer["text"] in (NOT_A_MEMBER, MEMBERS_ONLY) for answer in forged.values())
    assert bot.services.store.hit_sharing(PRIVATE) is None  # the forged share-hits changed nothing
    (hit,) = posts_in(bot, HITS)  # only the public hit: the private channel never opted in
    assert "public-10.jpeg" in hit.params["text"]


def test_a_private_channels_hits_are_shared_only_after_a_member_opts_in(walls, audit, caplog) -> None:
    bot = walls()
    caplog.set_level(logging.INFO)
    private_hit(bot, 25)
    bot.drain()
    assert posts_in(bot, HITS) == []
    assert "is private and its hits are not shared" in caplog.text

    assert command(bot, audit, BOB, "share-hits on", PRIVATE)["text"] == MEMBERS_ONLY  # forged: Bob is not in it
    assert bot.services.store.hit_sharing(PRIVATE) is None and "share-hits on by U2 in channel C7LAB refused" in caplog.text
    asked = command(bot, audit, ALICE, "share-hits", PRIVATE)["text"]
    assert asked.startswith(f"Crystal hits from this private channel are not posted in <#{HITS}>. A member can")
    turned_on = command(bot, audit, ALICE, "share-hits on", PRIVATE)["text"]
    assert re.match(rf":white_check_mark: Done. Crystal hits from this private channel are posted in <#{HITS}>: "
                    rf"turned on by <@{ALICE}> on \d{{4}}-\d\d-\d\d \d\d:\d\d UTC\.", turned_on)
    assert f"{ALICE} turned sharing the crystal hits of private channel {PRIVATE} in {HITS} on" in caplog.text

    private_hit(bot, 10)
    plate_zip(bot, PRIVATE, "plate9.zip", "a rod in A1")
    bot.drain()
    single, plate = posts_in(bot, HITS)
    assert f"{MARKER}-drop10.jpeg" in single.params["text"] and "Plate plate9" in section_text(plate)
    assert command(bot, audit, ALICE, "share-hits off", PUBLIC)["text"].startswith("This channel is public")

    bot.stop()
    bot = walls()  # the setting is in the database: a restart keeps it
    assert "turned on by <@U1>" in command(bot, audit, ALICE, "share-hits", PRIVATE)["text"]
    turned_off = command(bot, audit, ALICE, "share-hits off", PRIVATE)["text"]
    assert f"are not posted in <#{HITS}> (turned off by <@{ALICE}> on" in turned_off
    private_hit(bot, 6488)
    bot.drain()
    assert len(posts_in(bot, HITS)) == 2


# --- teaching ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("editors, who", [
    ("", "Every member of the workspace who is not a guest can"),
    (f"{GUEST},{ALICE}", f"Only <@{ALICE}>, <@{GUEST}> can"),  # listed, and still a guest: never
])
def test_a_guest_never_adds_or_removes_an_example_and_is_told_who_can(walls, audit, editors, who) -> None:
    bot = walls(EXAMPLE_EDITORS=editors)
    reviewed = confirm(bot, audit, ALICE, public_hit(bot))

    responses = len(bot.slack.response_url_posts)
    use_as_example(bot, audit, GUEST, reviewed, PUBLIC)
    (_, refusal), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[responses:], what="the refusal")
    assert refusal["text"] == f"Guests cannot change the examples I learn from. {who} add or remove them."
    assert bot.slack.opened_views() == []

    use_as_example(bot, audit, ALICE, reviewed, PUBLIC)
    (form,) = bot.slack.wait_for(bot.slack.opened_views, what="the form, opened by Alice")
    forged = submit(bot, audit, GUEST, form, "Rods, says the guest.")  # the guest submits Alice's form
    assert forged == {"response_action": "errors", "errors": {
        EXPLANATION_BLOCK: f"Guests cannot change the examples I learn from. {who} add or remove them."}}
    assert bot.services.store.team_examples() == []
    assert submit(bot, audit, ALICE, form, "Rods along the rim.") is None

    listing = command(bot, audit, GUEST, "examples")
    responses = len(bot.slack.response_url_posts)
    click(bot, audit, GUEST, EXAMPLE_REMOVE_ACTION, button(listing, EXAMPLE_REMOVE_ACTION)["value"],
          {"ts": "1.0", **listing}, PUBLIC)
    (_, refused), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[responses:], what="the refusal")
    assert refused["text"].startswith("Guests cannot change") and len(bot.services.store.team_examples()) == 1


def test_a_user_lookup_that_fails_refuses_rather_than_guessing(walls, audit) -> None:
    bot = walls()
    reviewed = confirm(bot, audit, ALICE, public_hit(bot))
    bot.slack.fail_next("users.info", 500)
    responses = len(bot.slack.response_url_posts)
    use_as_example(bot, audit, ALICE, reviewed, PUBLIC)
    (_, refusal), = bot.slack.wait_for(lambda: bot.slack.response_url_posts[responses:], what="the refusal")
    assert "could not check with Slack who you are" in refusal["text"] and bot.slack.opened_views() == []
    use_as_example(bot, audit, ALICE, reviewed, PUBLIC)  # Slack answers again: the form opens
    bot.slack.wait_for(bot.slack.opened_views, what="the form")


# --- membership, as Slack says ---------------------------------------------------------------------------


def test_when_slack_cannot_say_who_is_where_the_bot_shows_less_never_more(walls, audit) -> None:
    bot = walls()
    public_hit(bot)
    private_hit(bot)
    for method in ("conversations.members", "users.conversations"):
        bot.slack.rate_limit_next(method, retry_after=30)
    view = home_text(open_home(bot, ALICE))
    assert "(0 · 0)" in view and "public-10.jpeg" not in view and MARKER not in view
    assert INCOMPLETE_NOTE in view
    assert command(bot, audit, ALICE, "recent", PRIVATE)["text"] == NOT_A_MEMBER
    asked = len(bot.slack.calls_to("conversations.members"))
    assert command(bot, audit, ALICE, "share-hits on", PRIVATE)["text"] == MEMBERS_ONLY  # not asked: Retry-After
    assert len(bot.slack.calls_to("conversations.members")) == asked and bot.services.store.hit_sharing(PRIVATE) is None

    bot.stop()
    bot = walls()
    bot.slack.fail_next("conversations.members", 500)
    assert command(bot, audit, ALICE, "stats", PUBLIC)["text"] == NOT_A_MEMBER
    assert command(bot, audit, ALICE, "stats", PUBLIC)["text"].startswith("*1 images classified in this channel*")


def test_membership_events_change_what_a_person_sees_without_asking_slack_again(walls, audit) -> None:
    bot = walls(MEMBERSHIP_CACHE_SECONDS="3600")
    private_hit(bot)
    assert command(bot, audit, BOB, "recent", PRIVATE)["text"] == NOT_A_MEMBER
    asked = len(bot.slack.calls_to("conversations.members"))

    deliver(bot, bot.slack.join(BOB, PRIVATE, inviter=ALICE))
    assert MARKER in command(bot, audit, BOB, "recent", PRIVATE)["text"]
    deliver(bot, bot.slack.leave(BOB, PRIVATE))
    assert command(bot, audit, BOB, "recent", PRIVATE)["text"] == NOT_A_MEMBER
    assert len(bot.slack.calls_to("conversations.members")) == asked  # the events alone said so


def test_a_person_who_left_a_channel_sees_nothing_of_it_from_a_process_that_did_not_hear_it(postgres_url, walls,
                                                                                           audit) -> None:
    # (postgres_url first: its database is dropped after both bots have stopped)
    settings = {"MEMBERSHIP_CACHE_SECONDS": "3600", "DATABASE_URL": postgres_url}
    first = walls(**settings)
    private_hit(first)
    deliver(first, first.slack.join(BOB, PRIVATE, inviter=ALICE))
    assert MARKER in command(first, audit, BOB, "recent", PRIVATE)["text"]  # the first process's cache says so

    second = walls(**settings)  # Slack sends each event to one connection: the newest
    deliver(second, second.slack.leave(BOB, PRIVATE))
    second.stop()
    assert command(first, audit, BOB, "recent", PRIVATE)["text"] == NOT_A_MEMBER
    asked = len(first.slack.calls_to("conversations.members"))
    assert command(first, audit, BOB, "stats", PRIVATE)["text"] == NOT_A_MEMBER  # the change is applied once
    assert len(first.slack.calls_to("conversations.members")) == asked
    assert MARKER not in json.dumps(open_home(first, BOB))
    deliver(first, first.slack.join(BOB, PRIVATE, inviter=ALICE))  # its own events it applies without asking again
    asked = len(first.slack.calls_to("conversations.members"))
    assert MARKER in command(first, audit, BOB, "recent", PRIVATE)["text"]
    assert len(first.slack.calls_to("conversations.members")) == asked


# --- deletion ----------------------------------------------------------------------------------------------


def test_a_deleted_upload_takes_its_image_its_example_and_its_hit_with_it(walls, audit) -> None:
    bot = walls()
    store = bot.services.store
    upload(bot, PUBLIC, "first.jpeg", image_bytes("clear", 220), "clear", "clear")
    event = public_hit(bot)
    bot.drain()  # the hit job runs beside the upload's own: done with the upload is not done with it
    (hit,) = posts_in(bot, HITS)
    use_as_example(bot, audit, ALICE, confirm(bot, audit, ALICE, event), PUBLIC)
    (form,) = bot.slack.wait_for(bot.slack.opened_views, what="the example form")
    assert submit(bot, audit, ALICE, form, "Rods along the rim.") is None
    upload(bot, PUBLIC, "second.jpeg", image_bytes("other", 1254), "other", "other")
    (job,) = store.jobs_of_message(PUBLIC, event["ts"])
    sha256 = store.image_of_call(job.call_id).sha256

    deliver(bot, bot.slack.file_deleted_event(event["files"][0]["id"]))
    bot.slack.wait_for(lambda: any(c.params.get("ts") == hit.response["ts"] for c in bot.slack.calls_to("chat.delete")),
                       what="the hit deleted in the hits channel")
    assert not [m for m in bot.slack.messages(HITS) if m["ts"] == hit.response["ts"]]
    assert store.image(sha256) is None and store.team_examples() == []
    assert "0 added by the team" in command(bot, audit, ALICE, "examples")["text"]
    upload(bot, PUBLIC, "third.jpeg", image_bytes("other", 1401), "other", "other")
    requests = bot.openai.responses_requests()
    assert len(requests) == 4
    assert prefix_json(requests[3]) == prefix_json(requests[0]) != prefix_json(requests[2])  # the prompt as before
    stats = command(bot, audit, ALICE, "stats")["text"]
    assert ":gem: crystals: 1" in stats and "1 confirmed" in stats  # the call and its verdict stay
    updates = len(bot.slack.calls_to("chat.update"))
    confirm(bot, audit, BOB, event)  # a verdict on the call still shows in its thread, and nowhere else
    bot.drain()
    assert {c.params["channel"] for c in bot.slack.calls_to("chat.update")[updates:]} == {PUBLIC}
    assert all(job.state == "done" for job in store.every_job_of_message(PUBLIC, event["ts"]) if job.kind == "feedback")


def test_a_plates_hits_message_loses_a_deleted_well_and_goes_with_a_deleted_zip(walls, audit) -> None:
    bot = walls()
    for name, number in (("A1.jpg", 25), ("A2.jpg", 10)):
        bot.openai.label_image(bot.normalised(image_bytes("crystals", number), name).jpeg, "crystals", f"rod {name}")
    wells = bot.upload(("A1.jpg", image_bytes("crystals", 25)), ("A2.jpg", image_bytes("crystals", 10)),
                       text="plate5", channel=PUBLIC)
    bot.wait_until_done(wells)
    bot.drain()
    (shared,) = posts_in(bot, HITS)
    assert "A1" in section_text(shared) and "A2" in section_text(shared)

    deliver(bot, bot.slack.file_deleted_event(wells["files"][0]["id"]))
    blanked = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("chat.update") if c.params["channel"] == HITS
                                          and c.params["ts"] == shared.response["ts"]], what="the hits message")[-1]
    assert "A1.jpg" not in json.dumps(blanked.params) and "A2" in section_text(blanked)

    plate = plate_zip(bot, PUBLIC, "plate6.zip", "a rod")
    bot.drain()
    shared_zip = posts_in(bot, HITS)[-1]
    deliver(bot, bot.slack.delete_message(PUBLIC, plate["ts"]))
    bot.slack.wait_for(lambda: any(c.params.get("ts") == shared_zip.response["ts"]
                                   for c in bot.slack.calls_to("chat.delete")), what="the plate's hits message deleted")
    inspection = bot.services.store.recent_inspections(PUBLIC, 1)[0]
    assert all(bot.services.store.deleted_jobs([j.id]) for j in bot.services.store.inspection_jobs(inspection.id))


def test_a_deleted_question_leaves_none_of_its_words_with_the_bot(walls) -> None:
    bot = walls()
    secret = private_hit(bot)
    asked = bot.say(f"is {MARKER}-7 worth a grid?", thread_ts=secret["ts"], channel=PRIVATE, user=ALICE)
    bot.wait_for_posts(secret["ts"], 2, timeout=30)  # the call, then the answer
    bot.drain()
    (question,) = bot.services.store.every_job_of_message(PRIVATE, asked["ts"])
    assert f"{MARKER}-7" in question.payload["text"]  # kept while the question stands: the test can fail

    deliver(bot, bot.slack.delete_message(PRIVATE, asked["ts"]))
    assert bot.services.store.job(question.id).payload["text"] == ""
    assert bot.services.store.deleted_jobs([question.id]) == {question.id}


def test_an_unshared_file_is_forgotten_only_once_it_is_left_nowhere(walls, audit) -> None:
    bot = walls()
    event = public_hit(bot)
    file_id = event["files"][0]["id"]
    bot.slack.add_message(HITS, "look", files=[event["files"][0]])  # someone shared it in the hits channel too
    (job,) = bot.services.store.jobs_of_message(PUBLIC, event["ts"])

    deliver(bot, bot.slack.unshare_file(file_id, PUBLIC))
    assert bot.services.store.image_of_call(job.call_id) is not None and len(posts_in(bot, HITS)) == 1
    deliver(bot, bot.slack.unshare_file(file_id, HITS))
    assert bot.services.store.image_of_call(job.call_id) is None and bot.services.store.deleted_jobs([job.id])


# --- the bot removed from a channel -----------------------------------------------------------------------


def test_a_channel_the_bot_was_removed_from_shows_nowhere_and_its_queued_jobs_end_quietly(walls, audit,
                                                                                        caplog) -> None:
    bot = walls(JOB_RETRY_SECONDS="1")
    caplog.set_level(logging.INFO)
    public_hit(bot)
    private_hit(bot)
    bot.openai.fail_next(500, times=1000)  # the model is down: the next upload waits in the queue
    pending = bot.upload(("late.jpeg", image_bytes("precipitate", 216)), channel=PRIVATE)
    bot.slack.wait_for(lambda: (jobs := bot.services.store.jobs_of_message(PRIVATE, pending["ts"]))
                       and jobs[0].attempts >= 1, what="the upload tried once")
    posted = len(posts_in(bot, PRIVATE))

    deliver(bot, bot.slack.remove_bot(PRIVATE, by=ALICE))
    bot.openai.reset()  # the model is back
    (job,) = bot.services.store.jobs_of_message(PRIVATE, pending["ts"])
    assert job.state == "failed" and job.error == f"the bot is no longer in channel {PRIVATE}"
    assert len(posts_in(bot, PRIVATE)) == posted  # nothing more posted there
    assert f"image job {job.id} (channel {PRIVATE}) ends quietly" in caplog.text
    assert f"channel {PRIVATE} removed the bot" in caplog.text

    view = home_text(open_home(bot, ALICE))
    assert MARKER not in view and "public-10.jpeg" in view and "(1 · 1)" in view
    assert command(bot, audit, ALICE, "recent", PRIVATE)["text"] == NOT_A_MEMBER

    deliver(bot, bot.slack.archive(PUBLIC, by=ALICE))
    assert command(bot, audit, ALICE, "stats", PUBLIC)["text"] == NOT_A_MEMBER
    upload(bot, PUBLIC, "unarchived.jpeg", image_bytes("clear", 220), "clear", "clear")  # it is in use again
    assert command(bot, audit, ALICE, "stats", PUBLIC)["text"].startswith("*2 images classified in this channel*")
    deliver(bot, bot.slack.join(BOT, PRIVATE, inviter=ALICE))  # invited back
    assert MARKER in command(bot, audit, ALICE, "recent", PRIVATE)["text"]
