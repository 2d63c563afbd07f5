-- The SQLite store's schema and queries. Each block is one statement, named for its use.
-- Timestamps are RFC 3339 UTC text; `seq` is the submission order (FIFO).

-- name: schema
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

-- name: submit
INSERT INTO jobs (job_id, description, data, state, created_at)
VALUES (:job_id, :description, :data, 'submitted', :created_at)
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts;

-- name: next
UPDATE jobs
SET state = 'running', started_at = :now, attempts = attempts + 1
WHERE seq = (SELECT seq FROM jobs WHERE state = 'submitted' ORDER BY seq LIMIT 1)
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts;

-- name: complete
UPDATE jobs
SET state = :state, finished_at = :now
WHERE job_id = :job_id AND state = 'running'
RETURNING job_id, description, data, state, created_at, started_at, finished_at, attempts;

-- name: get
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts
FROM jobs WHERE job_id = :job_id;

-- name: seq_of
SELECT seq FROM jobs WHERE job_id = :job_id;

-- name: list_all
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts
FROM jobs WHERE seq > :after_seq AND seq < :before_seq ORDER BY seq LIMIT :limit;

-- name: list_all_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts
FROM jobs WHERE seq > :after_seq AND seq < :before_seq ORDER BY seq DESC LIMIT :limit;

-- name: list_in_states
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts
FROM jobs
WHERE seq > :after_seq AND seq < :before_seq
  AND state IN (SELECT value FROM json_each(:states))
ORDER BY seq LIMIT :limit;

-- name: list_in_states_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts
FROM jobs
WHERE seq > :after_seq AND seq < :before_seq
  AND state IN (SELECT value FROM json_each(:states))
ORDER BY seq DESC LIMIT :limit;

-- A prefix is a range of the job_id index: [:prefix, :prefix_end). The unary `+` keeps SQLite
-- from walking seq instead: a search finds a few jobs among many. :states is NULL for all.
-- name: list_prefix
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts
FROM jobs
WHERE job_id >= :prefix AND job_id < :prefix_end
  AND +seq > :after_seq AND +seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
ORDER BY seq LIMIT :limit;

-- name: list_prefix_desc
SELECT job_id, description, data, state, created_at, started_at, finished_at, attempts
FROM jobs
WHERE job_id >= :prefix AND job_id < :prefix_end
  AND +seq > :after_seq AND +seq < :before_seq
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
ORDER BY seq DESC LIMIT :limit;

-- name: stats
SELECT state, n FROM job_counts;
