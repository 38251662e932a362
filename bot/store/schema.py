"""The database schema, as migrations applied in order; the same list serves SQLite and PostgreSQL.

To change the schema, append a migration (never edit one that has shipped). `{id}`, `{real}` and
`{blob}` stand for the column types that differ between the two databases; everything else is SQL
both understand.
"""
from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the classifier's cache and records
    """
    CREATE TABLE images (
        sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, jpeg {blob} NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL, source_format TEXT NOT NULL
    );
    CREATE TABLE calls (
        id {id}, image_sha256 TEXT NOT NULL REFERENCES images(sha256),
        fingerprint TEXT NOT NULL, model TEXT NOT NULL, label TEXT NOT NULL,
        confidence {real}, confidence_source TEXT NOT NULL, observations TEXT NOT NULL,
        explanation TEXT NOT NULL, input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, cost_usd {real}, created_at {real} NOT NULL
    );
    CREATE INDEX calls_by_key ON calls (image_sha256, fingerprint, model);
    CREATE TABLE batches (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, fingerprint TEXT NOT NULL,
        entries TEXT NOT NULL, created_at {real} NOT NULL
    );
    """,
    # 2: Slack jobs (one per accepted image), de-duplicated events, feedback on calls
    """
    CREATE TABLE jobs (
        id {id}, channel TEXT NOT NULL, message_ts TEXT NOT NULL, thread_ts TEXT NOT NULL,
        file_id TEXT NOT NULL, file_name TEXT NOT NULL, user_id TEXT NOT NULL,
        state TEXT NOT NULL, error TEXT, call_id INTEGER REFERENCES calls(id), reply_ts TEXT,
        created_at {real} NOT NULL, updated_at {real} NOT NULL,
        UNIQUE (channel, message_ts, file_id)
    );
    CREATE INDEX jobs_by_thread ON jobs (channel, thread_ts);
    CREATE TABLE seen_events (event_id TEXT PRIMARY KEY, seen_at {real} NOT NULL);
    CREATE TABLE feedback (
        id {id}, job_id INTEGER NOT NULL REFERENCES jobs(id), user_id TEXT NOT NULL,
        verdict TEXT NOT NULL, label TEXT NOT NULL, created_at {real} NOT NULL
    );
    """,
    # 3: the job table becomes the durable queue: every kind of work (an image, a question, a
    # click, a message's outcome reaction) is a job that workers claim with a lease. Jobs that
    # the old thread pool left unfinished are picked up again; finished ones are done.
    """
    ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'image';
    ALTER TABLE jobs ADD COLUMN payload TEXT NOT NULL DEFAULT '{{}}';
    ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
    ALTER TABLE jobs ADD COLUMN lease_until {real};
    ALTER TABLE jobs ADD COLUMN run_after {real} NOT NULL DEFAULT 0;
    UPDATE jobs SET state = 'done' WHERE state = 'replied';
    CREATE INDEX jobs_ready ON jobs (state, run_after);
    CREATE INDEX jobs_by_message ON jobs (channel, message_ts);
    ALTER TABLE images ADD COLUMN used_at {real} NOT NULL DEFAULT 0;
    ALTER TABLE feedback ADD COLUMN request_id INTEGER;
    CREATE UNIQUE INDEX feedback_once ON feedback (request_id);
    CREATE TABLE follow_ups (
        id {id}, job_id INTEGER NOT NULL, model TEXT NOT NULL, input_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd {real},
        created_at {real} NOT NULL
    );
    """,
    # 4: whole plates. A plate's zip (or a message of images named by well) is one inspection of a
    # plate in a channel; its images are jobs of their own that carry the inspection's id, and the
    # last of them queues the inspection's summary, as the last image of a message queues its outcome.
    """
    ALTER TABLE jobs ADD COLUMN inspection_id INTEGER;
    CREATE INDEX jobs_by_inspection ON jobs (inspection_id);
    CREATE TABLE inspections (
        id {id}, channel TEXT NOT NULL, plate TEXT NOT NULL, plate_name TEXT NOT NULL,
        message_ts TEXT NOT NULL, thread_ts TEXT NOT NULL, source_key TEXT NOT NULL, source TEXT NOT NULL,
        user_id TEXT NOT NULL, images INTEGER NOT NULL, skipped TEXT NOT NULL,
        progress_ts TEXT, progress_at {real} NOT NULL DEFAULT 0, uploaded TEXT NOT NULL DEFAULT '',
        created_at {real} NOT NULL, finished_at {real},
        UNIQUE (channel, message_ts, source_key)
    );
    CREATE INDEX inspections_by_plate ON inspections (channel, plate);
    CREATE INDEX inspections_by_thread ON inspections (channel, thread_ts);
    """,
    # 5: this month's spend is summed by time; a call's channel is that of the first job that used it;
    # an export reads a channel's image jobs in id order, each with its latest verdict
    """
    CREATE INDEX calls_by_time ON calls (created_at, cost_usd);
    CREATE INDEX follow_ups_by_time ON follow_ups (created_at, cost_usd);
    CREATE INDEX jobs_by_call ON jobs (call_id);
    CREATE INDEX jobs_by_channel ON jobs (channel, kind, id);
    CREATE INDEX feedback_by_job ON feedback (job_id, id);
    """,
    # 6: few-shot examples the team adds from Slack ("Use as example"), with a copy of the image as it
    # was sent to the model (pruning old images never takes an example's bytes). A removed example
    # stays for the record; an image is an example in use at most once.
    """
    CREATE TABLE examples (
        id {id}, image_sha256 TEXT NOT NULL, name TEXT NOT NULL, jpeg {blob} NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL, source_format TEXT NOT NULL,
        label TEXT NOT NULL, explanation TEXT NOT NULL, job_id INTEGER NOT NULL REFERENCES jobs(id),
        channel TEXT NOT NULL, link TEXT NOT NULL, added_by TEXT NOT NULL, added_at {real} NOT NULL,
        removed_by TEXT, removed_at {real}
    );
    CREATE UNIQUE INDEX examples_in_use ON examples (image_sha256) WHERE removed_at IS NULL;
    """,
    # 7: the Home tab's chart shared with each person (its PNG's hash and Slack file id), so a restart
    # does not upload the same chart again
    """
    CREATE TABLE home_charts (
        id {id}, user_id TEXT NOT NULL UNIQUE, png_sha256 TEXT NOT NULL, file_id TEXT NOT NULL,
        updated_at {real} NOT NULL
    );
    """,
    # 8: a plate tried again (Retry failed wells): the CSV's file id beside the map's (kept in `uploaded`),
    # so that both are replaced in the thread, and whether they show the plate as it was before a retry
    """
    ALTER TABLE inspections ADD COLUMN csv_file_id TEXT;
    ALTER TABLE inspections ADD COLUMN files_stale INTEGER NOT NULL DEFAULT 0;
    """,
    # 9: a plate sent through the Batch API (PLATE_BATCH): its batches (one, or several for a large plate;
    # the model, prompt fingerprint and entries are in `batches`), when each was sent and when its results
    # were stored, so a restart goes on polling them
    """
    CREATE TABLE plate_batches (
        id {id}, inspection_id INTEGER NOT NULL, batch_id TEXT NOT NULL UNIQUE, submitted_at {real} NOT NULL,
        collected_at {real}
    );
    CREATE INDEX plate_batches_by_inspection ON plate_batches (inspection_id);
    """,
    # 10: private stays private. The channels the bot was removed from (left, archived, deleted): their
    # data shows nowhere and nothing more is posted there until the bot is invited back. Each change of
    # a private channel's hits sharing (/crystals share-hits on|off), with who made it and when; the
    # latest row is the setting. The jobs whose upload was deleted in Slack (their image bytes are gone
    # and they are shared nowhere; their calls and verdicts stay for the statistics).
    """
    CREATE TABLE removed_channels (
        id {id}, channel TEXT NOT NULL UNIQUE, how TEXT NOT NULL, removed_at {real} NOT NULL
    );
    CREATE TABLE hit_sharing (
        id {id}, channel TEXT NOT NULL, shared INTEGER NOT NULL, user_id TEXT NOT NULL, changed_at {real} NOT NULL
    );
    CREATE INDEX hit_sharing_by_channel ON hit_sharing (channel, id);
    CREATE TABLE deleted_jobs (
        id {id}, job_id INTEGER NOT NULL UNIQUE, how TEXT NOT NULL, deleted_at {real} NOT NULL
    );
    CREATE INDEX jobs_by_file ON jobs (file_id);
    """,
    # screens: each well's condition (its text and parsed components, as JSON); a name is in use once
    # (a removed screen stays for the record); a plate of a channel uses one screen, for all its
    # inspections; `/crystals screens add NAME` waits for that person's next upload in the channel;
    # an inspection keeps what became of the screen its upload named or held (a note for its summary)
    """
    CREATE TABLE screens (
        id {id}, name TEXT NOT NULL, name_key TEXT NOT NULL, file_name TEXT NOT NULL, kind TEXT NOT NULL,
        encoding TEXT NOT NULL, layout INTEGER NOT NULL, wells INTEGER NOT NULL, sha256 TEXT NOT NULL,
        channel TEXT NOT NULL, added_by TEXT NOT NULL, added_at {real} NOT NULL, removed_by TEXT, removed_at {real}
    );
    CREATE UNIQUE INDEX screens_in_use ON screens (name_key) WHERE removed_at IS NULL;
    CREATE TABLE screen_wells (
        id {id}, screen_id INTEGER NOT NULL REFERENCES screens(id), well TEXT NOT NULL, place INTEGER NOT NULL,
        condition TEXT NOT NULL, UNIQUE (screen_id, well)
    );
    CREATE TABLE plate_screens (
        id {id}, channel TEXT NOT NULL, plate TEXT NOT NULL, plate_name TEXT NOT NULL,
        screen_id INTEGER NOT NULL REFERENCES screens(id), linked_by TEXT NOT NULL, linked_at {real} NOT NULL,
        UNIQUE (channel, plate)
    );
    CREATE TABLE screen_requests (
        id {id}, channel TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, requested_at {real} NOT NULL,
        UNIQUE (channel, user_id)
    );
    ALTER TABLE inspections ADD COLUMN screen_note TEXT;
    """,
    # a plate's history: when each plate inspection was imaged (a date in the zip's or the images' names,
    # else the upload time) and what said so, so a plate's inspections line up by date and count their
    # days; the file ids of the gallery of its hits in the thread (space-separated), replaced with the map
    # and CSV after a retry
    """
    ALTER TABLE inspections ADD COLUMN imaged_at {real};
    ALTER TABLE inspections ADD COLUMN dated_from TEXT NOT NULL DEFAULT '';
    ALTER TABLE inspections ADD COLUMN gallery_file_ids TEXT NOT NULL DEFAULT '';
    """,
    # the model service as every process shares it (bot/service_state.py): per API key and model, its
    # learned limits, buckets and breaker (JSON, changed under the row's lock), the times reserved ahead
    # for requests that went back to the queue, and counters per outcome; jobs say what they wait for
    """
    CREATE TABLE model_services (
        id {id}, service TEXT NOT NULL UNIQUE, label TEXT NOT NULL, state TEXT NOT NULL, updated_at {real} NOT NULL
    );
    CREATE TABLE model_tickets (
        id {id}, service TEXT NOT NULL, request_key TEXT NOT NULL, go_at {real} NOT NULL, cost {real} NOT NULL,
        expires_at {real} NOT NULL, UNIQUE (service, request_key)
    );
    CREATE TABLE model_counts (
        id {id}, service TEXT NOT NULL, outcome TEXT NOT NULL, requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, UNIQUE (service, outcome)
    );
    ALTER TABLE jobs ADD COLUMN waiting TEXT;
    ALTER TABLE jobs ADD COLUMN waiting_since {real};
    CREATE INDEX jobs_waiting ON jobs (waiting, state);
    """,
    # a screen belongs to the channel it was added in: its name is in use once per channel (another
    # channel's screens are not named to people outside it, so they cannot take a name from them); each
    # screen keeps the job that read it (its file's, or that of the plate whose zip held it), so deleting
    # that upload in Slack removes the screen. Screens kept before are matched to that job as well as can
    # be: the latest job of its kind from that person in that channel before the screen was kept.
    """
    DROP INDEX screens_in_use;
    CREATE UNIQUE INDEX screens_in_use_by_channel ON screens (channel, name_key) WHERE removed_at IS NULL;
    ALTER TABLE screens ADD COLUMN job_id INTEGER;
    UPDATE screens SET job_id = COALESCE(
        (SELECT MAX(jobs.id) FROM jobs WHERE jobs.kind = 'screen' AND jobs.channel = screens.channel
         AND jobs.user_id = screens.added_by AND jobs.file_name = screens.file_name
         AND jobs.created_at <= screens.added_at),
        (SELECT MAX(jobs.id) FROM jobs WHERE jobs.kind = 'plate' AND jobs.channel = screens.channel
         AND jobs.user_id = screens.added_by AND jobs.created_at <= screens.added_at));
    CREATE INDEX screens_by_job ON screens (job_id);
    """,
    # a reserved time's priority (bot/ratelimit.py's Priority): an interactive request (a question, a single
    # image) goes ahead of the bulk ones (a plate's images), which move later by what it takes
    """
    ALTER TABLE model_tickets ADD COLUMN priority TEXT NOT NULL DEFAULT 'bulk';
    """,
    # a person joined or left a channel, as one process heard it from Slack: the other processes forget
    # what they cached of both (bot/slack/privacy.py). Kept only as long as a cache entry lives (not copied
    # by copy-db: a new database starts with empty caches).
    """
    CREATE TABLE membership_changes (
        id {id}, user_id TEXT NOT NULL, channel TEXT NOT NULL, heard_by TEXT NOT NULL, heard_at {real} NOT NULL
    );
    CREATE INDEX membership_changes_by_time ON membership_changes (heard_at);
    """,
]

SQLITE_TYPES = {"id": "INTEGER PRIMARY KEY", "real": "REAL", "blob": "BLOB"}
POSTGRES_TYPES = {"id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "real": "DOUBLE PRECISION",
                  "blob": "BYTEA"}

# Tables in the order their rows can be copied (referenced tables first), for copy-db.
TABLES = ("images", "calls", "batches", "jobs", "seen_events", "feedback", "follow_ups", "inspections",
          "examples", "home_charts", "plate_batches", "removed_channels", "hit_sharing", "deleted_jobs", "screens",
          "screen_wells", "plate_screens", "screen_requests",
          "model_services", "model_tickets", "model_counts")


def statements(migration: str, types: dict[str, str]) -> list[str]:
    """One migration's SQL statements, with the database's column types filled in."""
    return [statement.strip() for statement in migration.format(**types).split(";") if statement.strip()]
