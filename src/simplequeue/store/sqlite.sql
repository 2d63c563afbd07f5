-- The SQLite store's schema and queries. Each block is one statement, named for its use.
-- Timestamps are RFC 3339 UTC text; `seq` is the submission order (FIFO).

-- Migrations: `migrate_N` takes a version N-1 file to version N; a new file runs them all.

-- name: migrate_1
CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT NOT NULL UNIQUE,
    description  TEXT,
    data         TEXT,  -- the JSON object as the client sent it, or NULL
    state        TEXT NOT NULL
                 CHECK (state IN ('submitted', 'running', 'succeeded', 'failed')),
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0
);
-- The queue itself: only submitted jobs, in order, so /jobs/next never scans finished ones.
CREATE INDEX jobs_queue ON jobs (seq) WHERE state = 'submitted';
CREATE INDEX jobs_state ON jobs (state, seq);
-- Counts per state, kept by triggers in the same transaction, so /stats reads four rows.
CREATE TABLE job_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO job_counts (state, n)
    VALUES ('submitted', 0), ('running', 0), ('succeeded', 0), ('failed', 0);
CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON jobs BEGIN
    UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER jobs_counted_on_update AFTER UPDATE OF state ON jobs
WHEN OLD.state <> NEW.state BEGIN
    UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
END;

-- name: migrate_2
-- Leases, retries and results (issue 8). A job a version-1 server left running has no lease:
-- it gets one from the upgrade on, so that it comes back if its worker is gone.
ALTER TABLE jobs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3;
ALTER TABLE jobs ADD COLUMN run_at TEXT NOT NULL DEFAULT '';
UPDATE jobs SET run_at = created_at;
ALTER TABLE jobs ADD COLUMN lease_id TEXT;
ALTER TABLE jobs ADD COLUMN lease_seconds INTEGER;
ALTER TABLE jobs ADD COLUMN lease_expires_at TEXT;
ALTER TABLE jobs ADD COLUMN result TEXT;
ALTER TABLE jobs ADD COLUMN errors TEXT NOT NULL DEFAULT '[]';
UPDATE jobs SET lease_seconds = :lease_seconds, lease_expires_at = :lease_expires_at
WHERE state = 'running';
-- The leases to take back, soonest first; and when the next waiting job falls due.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'submitted';

-- name: migrate_3
-- Queues, priorities and scheduled jobs; cancel, retry and retention (issue 10).
-- `ready` marks a submitted job that is due: the hand-out indexes hold only those, in the order
-- of CONTRACT §8, so /jobs/next reads the head of one index however many jobs are scheduled
-- ahead. A job scheduled for later waits in `jobs_waiting` until a claim at or after its time
-- makes it ready (in that claim's own transaction).
ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN ready INTEGER NOT NULL DEFAULT 1;
-- The maxAttempts the submit asked for, once an operator's retry has raised it (else NULL): an
-- idempotent resubmit is compared with what was sent, not with what the retry made of it.
ALTER TABLE jobs ADD COLUMN max_attempts_sent INTEGER;
UPDATE jobs SET ready = 0 WHERE state = 'submitted' AND run_at > :now;
DROP INDEX jobs_queue;
DROP INDEX jobs_due;
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq) WHERE state = 'submitted' AND ready;
CREATE INDEX jobs_ready_in ON jobs (queue, priority DESC, run_at, seq)
WHERE state = 'submitted' AND ready;
CREATE INDEX jobs_waiting ON jobs (run_at) WHERE state = 'submitted' AND NOT ready;
-- Per queue: the oldest due job (queue latency), and whether any is due.
CREATE INDEX jobs_due ON jobs (queue, run_at) WHERE state = 'submitted';
CREATE INDEX jobs_in_queue ON jobs (queue, seq);
-- Retention: the oldest finished jobs of a state.
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
-- Counts per queue and state, kept by triggers, so /stats reads a few rows.
CREATE TABLE queue_counts (
    queue  TEXT NOT NULL,
    state  TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;
INSERT INTO queue_counts (queue, state, n) SELECT queue, state, count(*) FROM jobs GROUP BY 1, 2;
-- The cumulative counters (jobs ever added; times a job became succeeded or failed) are the
-- counts above plus what left them, in one row: jobs deleted (retention), and how many of them
-- were finished; finished jobs sent back to submitted (an operator's retry). Those are the rare
-- moves, so the hot paths (a submit, a completion) write nothing more than the counts. A file
-- from an earlier release starts from its rows: a finished job has completed once.
CREATE TABLE totals (
    one               INTEGER PRIMARY KEY CHECK (one = 1),
    deleted           INTEGER NOT NULL,
    deleted_finished  INTEGER NOT NULL,
    reopened          INTEGER NOT NULL
);
INSERT INTO totals (one, deleted, deleted_finished, reopened) VALUES (1, 0, 0, 0);
DROP TRIGGER jobs_counted_on_insert;
DROP TRIGGER jobs_counted_on_update;
DROP TABLE job_counts;
CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jobs_counted_on_update AFTER UPDATE OF state ON jobs
WHEN OLD.state <> NEW.state BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jobs_reopened AFTER UPDATE OF state ON jobs
WHEN OLD.state IN ('succeeded', 'failed') AND NEW.state NOT IN ('succeeded', 'failed') BEGIN
    UPDATE totals SET reopened = reopened + 1;
END;
CREATE TRIGGER jobs_counted_on_delete AFTER DELETE ON jobs BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    UPDATE totals SET deleted = deleted + 1,
        deleted_finished = deleted_finished + (OLD.state IN ('succeeded', 'failed'));
END;
-- What retention leaves of a deleted job: its id stays "added once" (CONTRACT §9).
CREATE TABLE tombstones (
    job_id            TEXT PRIMARY KEY,
    queue             TEXT NOT NULL,
    priority          INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    description_hash  TEXT,
    data_hash         TEXT,
    state             TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    finished_at       TEXT NOT NULL,
    attempts          INTEGER NOT NULL
) WITHOUT ROWID;

-- Many at once: :jobs is a JSON array of [job_id, description, data, created_at, max_attempts,
-- queue, priority, run_at, ready], inserted in its order (so in submission order); an id with a
-- tombstone is not inserted. (The WHERE also tells SQLite's parser that ON CONFLICT belongs to
-- the INSERT, not to a join.)
-- name: submit_many
INSERT INTO jobs (job_id, description, data, state, created_at, max_attempts, queue, priority,
                  run_at, ready)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       'submitted', json_extract(value, '$[3]'), json_extract(value, '$[4]'),
       json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'),
       json_extract(value, '$[8]')
FROM json_each(:jobs)
WHERE NOT EXISTS (
    SELECT 1 FROM tombstones WHERE tombstones.job_id = json_extract(value, '$[0]')
)
ORDER BY key
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at;

-- Whether any job is due, in any queue / in the queues of the JSON array :queues (an empty
-- queue's claim looks first, without the write lock).
-- (INDEXED BY: without statistics SQLite's planner would read these partial indexes' rows
-- through jobs_state and sort them, which costs a scan of the queue; a query the index cannot
-- serve is an error, not a slow plan.)
-- name: any_due
SELECT EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_ready WHERE state = 'submitted' AND ready)
    OR EXISTS (
        SELECT 1 FROM jobs INDEXED BY jobs_waiting
        WHERE state = 'submitted' AND NOT ready AND run_at <= :now
    );

-- name: any_due_in
SELECT EXISTS (
    SELECT 1 FROM jobs INDEXED BY jobs_due
    WHERE state = 'submitted' AND queue IN (SELECT value FROM json_each(:queues))
      AND run_at <= :now
);

-- Scheduled jobs whose time has come join the hand-out order, the earliest due first, at most
-- :limit at once (a claim's first step, and the server's periodic look).
-- name: promote
UPDATE jobs SET ready = 1
WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_waiting
    WHERE state = 'submitted' AND NOT ready AND run_at <= :now ORDER BY run_at LIMIT :limit
);

-- The claim: up to :limit of the first ready jobs in the order of CONTRACT §8 (`candidates`,
-- one of the two blocks below, or one per queue named: see SqliteStore.claim), the n-th (from 0)
-- under the n-th lease id of the JSON array :lease_ids. A job taken back after its lease keeps
-- its place (its run_at and seq). The order keys come last, for the caller to sort by.
-- name: claim
UPDATE jobs
SET state = 'running', started_at = :now, attempts = attempts + 1,
    lease_id = json_extract(:lease_ids, '$[' || picked.n || ']'),
    lease_seconds = :lease_seconds, lease_expires_at = :until
FROM picked
WHERE jobs.seq = picked.seq
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at, lease_id,
       jobs.seq;

-- name: candidates_any
SELECT seq, priority, run_at FROM jobs INDEXED BY jobs_ready
WHERE state = 'submitted' AND ready
ORDER BY priority DESC, run_at, seq LIMIT :limit

-- name: candidates_in
SELECT seq, priority, run_at FROM jobs INDEXED BY jobs_ready_in
WHERE state = 'submitted' AND ready AND queue = :queue_{n}
ORDER BY priority DESC, run_at, seq LIMIT :limit

-- name: attempt
SELECT seq, state, attempts, max_attempts, lease_id, lease_seconds, errors
FROM jobs WHERE job_id = :job_id;

-- name: renew
UPDATE jobs SET lease_expires_at = :until, lease_seconds = :lease_seconds
WHERE seq = :seq AND state = 'running'
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at, lease_id;

-- One attempt ends: :lease_id is what stays on the row (the finishing lease, so that its
-- repeats are recognised; NULL after a finish without a lease or an expiry, so that the late
-- worker's completion is refused).
-- name: finish
UPDATE jobs
SET state = :state, finished_at = :finished_at, run_at = coalesce(:run_at, run_at),
    ready = :ready, result = :result, errors = :errors, lease_id = :lease_id,
    lease_expires_at = NULL
WHERE seq = :seq AND state = 'running'
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at;

-- The common ending in one statement: a worker's, under its current lease (or naming none), to
-- a state that does not depend on the attempts, with no error to add (a success). The lease
-- named stays on the row, as `finish` leaves it. When it changes no row, the full path
-- (`attempt`, then `finish`) decides what to answer.
-- name: finish_leased
UPDATE jobs
SET state = :state, finished_at = :finished_at, result = :result, lease_id = :lease_id,
    lease_expires_at = NULL
WHERE job_id = :job_id AND state = 'running' AND (:lease_id IS NULL OR lease_id = :lease_id)
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at;

-- name: expired
SELECT job_id, lease_id FROM jobs INDEXED BY jobs_leases
WHERE state = 'running' AND lease_expires_at <= :now
ORDER BY lease_expires_at LIMIT :limit;

-- name: release
UPDATE jobs
SET state = 'submitted', ready = 1, attempts = attempts - 1, lease_id = NULL,
    lease_expires_at = NULL,
    started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END
WHERE job_id = :job_id AND lease_id = :lease_id AND state = 'running';

-- name: next_due
SELECT run_at FROM jobs INDEXED BY jobs_waiting
WHERE state = 'submitted' AND NOT ready AND run_at > :now
ORDER BY run_at LIMIT 1;

-- An operator's move (CONTRACT §9) of the jobs whose seq is in the JSON array :seqs. To failed:
-- finished now, the lease over, `:error` recorded as the current attempt's (the newest :kept
-- errors stay). To submitted: due now, one more attempt allowed if all were used.
-- name: move_to_failed
UPDATE jobs
SET state = 'failed', finished_at = :now, lease_id = NULL, lease_expires_at = NULL,
    errors = json_insert(
        CASE WHEN json_array_length(errors) >= :kept THEN json_remove(errors, '$[0]')
             ELSE errors END,
        '$[#]', json_object('attempt', attempts, 'at', :now, 'error', :error))
WHERE seq IN (SELECT value FROM json_each(:seqs))
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at, seq;

-- name: move_to_submitted
UPDATE jobs
SET state = 'submitted', finished_at = NULL, lease_id = NULL, lease_expires_at = NULL,
    run_at = :now, ready = 1, max_attempts_sent = coalesce(max_attempts_sent, max_attempts),
    max_attempts = max(max_attempts, attempts + 1)
WHERE seq IN (SELECT value FROM json_each(:seqs))
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at, seq;

-- name: movable
SELECT seq, state FROM jobs WHERE job_id = :job_id;

-- One chunk of a move by filter: a window of at most :limit jobs of one state after :after in
-- submission order, of which those matching the filter move; its last seq is where the next
-- chunk starts. (`window_all` serves a filter of several states, which the queue never sends.)
-- name: window_in_state
SELECT seq, state, job_id, queue FROM jobs INDEXED BY jobs_state
WHERE state = :state AND seq > :after ORDER BY seq LIMIT :limit;

-- name: window_all
SELECT seq, state, job_id, queue FROM jobs WHERE seq > :after ORDER BY seq LIMIT :limit;

-- name: next_waiting
SELECT 1 FROM jobs INDEXED BY jobs_waiting
WHERE state = 'submitted' AND NOT ready AND run_at <= :now LIMIT 1;

-- Retention: the oldest finished jobs of a state, with what their tombstones keep (read first,
-- outside the write lock: the fingerprints are computed between this read and the delete).
-- name: prunable
SELECT seq, job_id, queue, priority, coalesce(max_attempts_sent, max_attempts), description,
       data, state, created_at, finished_at, attempts
FROM jobs WHERE state = :state AND finished_at < :before ORDER BY finished_at LIMIT :limit;

-- name: max_attempts_sent
SELECT coalesce(max_attempts_sent, max_attempts) FROM jobs WHERE job_id = :job_id;

-- name: bury
INSERT INTO tombstones (job_id, queue, priority, max_attempts, description_hash, data_hash,
                        state, created_at, finished_at, attempts)
VALUES (:job_id, :queue, :priority, :max_attempts, :description_hash, :data_hash, :state,
        :created_at, :finished_at, :attempts)
ON CONFLICT (job_id) DO NOTHING;

-- The jobs read by `prunable` that are still as they were then (not retried since).
-- name: delete
DELETE FROM jobs
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND +state = :state
  AND +finished_at < :before  -- (`+`: found by seq, then checked)
RETURNING seq;

-- name: tombstone
SELECT job_id, queue, priority, max_attempts, description_hash, data_hash, state, created_at,
       finished_at, attempts
FROM tombstones WHERE job_id = :job_id;

-- name: set_description
UPDATE jobs SET description = ? WHERE job_id = ?;

-- name: get
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs WHERE job_id = :job_id;

-- name: seq_of
SELECT seq FROM jobs WHERE job_id = :job_id;

-- name: list_all
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs WHERE seq > :after_seq AND seq < :before_seq ORDER BY seq LIMIT :limit;

-- name: list_all_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs WHERE seq > :after_seq AND seq < :before_seq ORDER BY seq DESC LIMIT :limit;

-- name: list_in_states
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs
WHERE seq > :after_seq AND seq < :before_seq
  AND state IN (SELECT value FROM json_each(:states))
ORDER BY seq LIMIT :limit;

-- name: list_in_states_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs
WHERE seq > :after_seq AND seq < :before_seq
  AND state IN (SELECT value FROM json_each(:states))
ORDER BY seq DESC LIMIT :limit;

-- name: list_in_queues
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs
WHERE queue IN (SELECT value FROM json_each(:queues))
  AND seq > :after_seq AND seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
ORDER BY seq LIMIT :limit;

-- name: list_in_queues_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs
WHERE queue IN (SELECT value FROM json_each(:queues))
  AND seq > :after_seq AND seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
ORDER BY seq DESC LIMIT :limit;

-- A prefix is a range of the job_id index: [:prefix, :prefix_end). The unary `+` keeps SQLite
-- from walking seq instead: a search finds a few jobs among many. :states is NULL for all.
-- name: list_prefix
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs
WHERE job_id >= :prefix AND job_id < :prefix_end
  AND +seq > :after_seq AND +seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
ORDER BY seq LIMIT :limit;

-- name: list_prefix_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at
FROM jobs
WHERE job_id >= :prefix AND job_id < :prefix_end
  AND +seq > :after_seq AND +seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
ORDER BY seq DESC LIMIT :limit;

-- name: stats
SELECT queue, state, n FROM queue_counts WHERE n > 0 ORDER BY queue;

-- The cumulative counters: jobs ever added, and times a job became succeeded or failed.
-- name: totals
SELECT (SELECT coalesce(sum(n), 0) FROM queue_counts) + deleted,
       (SELECT coalesce(sum(n), 0) FROM queue_counts WHERE state IN ('succeeded', 'failed'))
       + deleted_finished + reopened
FROM totals;

-- name: oldest_due
SELECT min(run_at) FROM jobs INDEXED BY jobs_due WHERE state = 'submitted' AND queue = :queue;

-- `sq copy`: a chunk of jobs in submission order with what no answer shows (the lease, the
-- maxAttempts the submit sent), and the tombstones in id order.
-- name: export
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, queue, priority, run_at, lease_id,
       lease_seconds, coalesce(max_attempts_sent, max_attempts), seq
FROM jobs WHERE seq > :after ORDER BY seq LIMIT :limit;

-- name: export_tombstones
SELECT job_id, queue, priority, max_attempts, description_hash, data_hash, state, created_at,
       finished_at, attempts
FROM tombstones WHERE job_id > :after ORDER BY job_id LIMIT :limit;

-- One exported job, after every job here (a new seq), unless its id is taken by a job or a
-- tombstone. Ready when due at :now, as a submit makes it; max_attempts_sent stays NULL unless
-- it differs (see migrate_3).
-- name: load
INSERT INTO jobs (job_id, description, data, state, created_at, started_at, finished_at,
                  attempts, max_attempts, lease_expires_at, result, errors, queue, priority,
                  run_at, lease_id, lease_seconds, max_attempts_sent, ready)
SELECT :job_id, :description, :data, :state, :created_at, :started_at, :finished_at,
       :attempts, :max_attempts, :lease_expires_at, :result, :errors, :queue, :priority,
       :run_at, :lease_id, :lease_seconds, nullif(:max_attempts_sent, :max_attempts),
       :run_at <= :now
WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE job_id = :job_id)
ON CONFLICT (job_id) DO NOTHING;

-- name: load_tombstone
INSERT INTO tombstones (job_id, queue, priority, max_attempts, description_hash, data_hash,
                        state, created_at, finished_at, attempts)
SELECT :job_id, :queue, :priority, :max_attempts, :description_hash, :data_hash, :state,
       :created_at, :finished_at, :attempts
WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE job_id = :job_id)
ON CONFLICT (job_id) DO NOTHING;

-- The loaded jobs count themselves (the triggers above). A loaded tombstone is a job added and
-- finished, now deleted; :submitted and :completed are what the source counted beyond its jobs
-- and tombstones (an operator's retries), kept where `totals` adds them in.
-- name: load_totals
UPDATE totals
SET deleted = deleted + :tombstones + :submitted,
    deleted_finished = deleted_finished + :tombstones,
    reopened = reopened + :completed;
