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

-- Many at once: :jobs is a JSON array of [job_id, description, data, created_at, max_attempts],
-- inserted in its order (so in submission order). `WHERE true` tells SQLite's parser that
-- ON CONFLICT belongs to the INSERT, not to a join.
-- name: submit_many
INSERT INTO jobs (job_id, description, data, state, created_at, max_attempts, run_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       'submitted', json_extract(value, '$[3]'), json_extract(value, '$[4]'),
       json_extract(value, '$[3]')
FROM json_each(:jobs) WHERE true ORDER BY key
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors;

-- The oldest due jobs: a job taken back after its lease keeps its place (its seq).
-- name: due
SELECT seq FROM jobs WHERE state = 'submitted' AND run_at <= :now ORDER BY seq LIMIT :limit;

-- Up to :limit of them at once, the n-th (from 0, in hand-out order) under the n-th lease id of
-- the JSON array :lease_ids; `seq` comes last, for the caller to put them in that order.
-- name: claim
WITH picked AS (
    SELECT seq, row_number() OVER (ORDER BY seq) - 1 AS n
    FROM jobs WHERE state = 'submitted' AND run_at <= :now ORDER BY seq LIMIT :limit
)
UPDATE jobs
SET state = 'running', started_at = :now, attempts = attempts + 1,
    lease_id = json_extract(:lease_ids, '$[' || picked.n || ']'),
    lease_seconds = :lease_seconds, lease_expires_at = :until
FROM picked
WHERE jobs.seq = picked.seq
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, lease_id, jobs.seq;

-- name: attempt
SELECT seq, state, attempts, max_attempts, lease_id, lease_seconds, errors
FROM jobs WHERE job_id = :job_id;

-- name: renew
UPDATE jobs SET lease_expires_at = :until, lease_seconds = :lease_seconds
WHERE seq = :seq AND state = 'running'
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors, lease_id;

-- One attempt ends: :lease_id is what stays on the row (the finishing lease, so that its
-- repeats are recognised; NULL after a finish without a lease or an expiry, so that the late
-- worker's completion is refused).
-- name: finish
UPDATE jobs
SET state = :state, finished_at = :finished_at, run_at = coalesce(:run_at, run_at),
    result = :result, errors = :errors, lease_id = :lease_id, lease_expires_at = NULL
WHERE seq = :seq AND state = 'running'
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors;

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
       max_attempts, lease_expires_at, result, errors;

-- name: expired
SELECT job_id, lease_id FROM jobs
WHERE state = 'running' AND lease_expires_at <= :now
ORDER BY lease_expires_at LIMIT :limit;

-- name: release
UPDATE jobs
SET state = 'submitted', attempts = attempts - 1, lease_id = NULL, lease_expires_at = NULL,
    started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END
WHERE job_id = :job_id AND lease_id = :lease_id AND state = 'running';

-- name: next_due
SELECT min(run_at) FROM jobs WHERE state = 'submitted';

-- name: get
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors
FROM jobs WHERE job_id = :job_id;

-- name: seq_of
SELECT seq FROM jobs WHERE job_id = :job_id;

-- name: list_all
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors
FROM jobs WHERE seq > :after_seq AND seq < :before_seq ORDER BY seq LIMIT :limit;

-- name: list_all_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors
FROM jobs WHERE seq > :after_seq AND seq < :before_seq ORDER BY seq DESC LIMIT :limit;

-- name: list_in_states
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors
FROM jobs
WHERE seq > :after_seq AND seq < :before_seq
  AND state IN (SELECT value FROM json_each(:states))
ORDER BY seq LIMIT :limit;

-- name: list_in_states_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors
FROM jobs
WHERE seq > :after_seq AND seq < :before_seq
  AND state IN (SELECT value FROM json_each(:states))
ORDER BY seq DESC LIMIT :limit;

-- A prefix is a range of the job_id index: [:prefix, :prefix_end). The unary `+` keeps SQLite
-- from walking seq instead: a search finds a few jobs among many. :states is NULL for all.
-- name: list_prefix
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors
FROM jobs
WHERE job_id >= :prefix AND job_id < :prefix_end
  AND +seq > :after_seq AND +seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
ORDER BY seq LIMIT :limit;

-- name: list_prefix_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts,
       max_attempts, lease_expires_at, result, errors
FROM jobs
WHERE job_id >= :prefix AND job_id < :prefix_end
  AND +seq > :after_seq AND +seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
ORDER BY seq DESC LIMIT :limit;

-- name: stats
SELECT state, n FROM job_counts;
