-- The PostgreSQL store's schema and queries. Each block is one statement (or one composed part
-- of one, see postgres.py), named for its use. `{job}` stands for the columns every job row is
-- read with (block `job`). Tables live in the connection's current schema (its search_path),
-- prefixed `sq_` so that they never meet an application's own tables. A block's comment
-- follows its header: fragments are pasted into other blocks whole. Needs PostgreSQL 14 or
-- later (SQL-standard function bodies).
--
-- Ids and queue names are COLLATE "C": compared and ranged byte by byte (UTF-8), exactly as
-- SQLite does, so a prefix search is a range of the job_id index and finds what SQLite finds.
-- A description is bytea (its UTF-8): PostgreSQL's text cannot hold U+0000, which a description
-- may. Data and results are JSON texts as the client sent them (a NUL in one is escaped), and
-- a job's errors a JSON array as msgspec writes it, so both stay text.
--
-- Counts for /stats: spread over slots, summed at read. A single counter row per (queue, state)
-- would be written by every submit, claim and completion of every server: one row lock that
-- all writers queue on. Instead each counter is a few rows, one per slot (`sq_slot`: the
-- backend's pid modulo 16), so writers on different connections touch different rows; a
-- statement-level trigger with transition tables adds one delta per (queue, state) per
-- statement (not per row), in (queue, state) order so that two writers sharing a slot never
-- lock in opposite orders.
-- /stats sums a few dozen rows, whatever the number of jobs. Deltas merged later by a
-- background job would keep fewer rows but make /stats lag or scan; slots are exact at once.

-- name: lock
-- Servers starting together: one creates or migrates the schema, the others wait and find it
-- done. One lock per schema, so that queues in other schemas never wait for this one.
SELECT pg_advisory_xact_lock(hashtext('simplequeue:' || current_schema()));

-- name: schema
SELECT current_schema(), current_setting('server_encoding'),
       EXISTS (SELECT 1 FROM pg_tables
               WHERE schemaname = current_schema() AND tablename = 'sq_meta');

-- name: autovacuum
SELECT current_setting('autovacuum');

-- name: version
SELECT version FROM sq_meta;

-- name: set_version
UPDATE sq_meta SET version = %(version)s;

-- name: migrate_1
-- Migrations: `migrate_N` takes a version N-1 schema to version N, in the transaction that holds
-- `lock`; a new schema runs them all.
CREATE TABLE sq_meta (one int PRIMARY KEY CHECK (one = 1), version int NOT NULL);
INSERT INTO sq_meta (one, version) VALUES (1, 0);
CREATE TABLE sq_jobs (
    seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- submission order
    job_id             text COLLATE "C" NOT NULL UNIQUE,
    description        bytea,
    data               text,
    state              text NOT NULL
                       CHECK (state IN ('submitted', 'running', 'succeeded', 'failed')),
    queue              text COLLATE "C" NOT NULL,
    priority           int NOT NULL,
    -- A submitted job that is due: only those are in the hand-out indexes (as in SQLite).
    ready              boolean NOT NULL,
    run_at             timestamptz NOT NULL,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    attempts           int NOT NULL DEFAULT 0,
    max_attempts       int NOT NULL,
    -- What the submit asked for, once an operator's retry has raised max_attempts (else NULL).
    max_attempts_sent  int,
    lease_id           text,
    lease_seconds      int,
    lease_expires_at   timestamptz,
    result             text,
    errors             text NOT NULL DEFAULT '[]'
);
-- The hand-out order of CONTRACT §8, over all queues and per queue; scheduled jobs waiting.
-- (`priority IS NOT NULL`, always true, is stated only by a claim of any queue: so a claim of
-- named queues cannot use sq_jobs_ready, filtering it by queue, which the planner, judging by
-- an average queue, may find cheaper; a rare queue's head would be found after every ready
-- job of the others.)
CREATE INDEX sq_jobs_ready ON sq_jobs (priority DESC, run_at, seq)
WHERE state = 'submitted' AND ready AND priority IS NOT NULL;
CREATE INDEX sq_jobs_ready_in ON sq_jobs (queue, priority DESC, run_at, seq)
WHERE state = 'submitted' AND ready;
CREATE INDEX sq_jobs_waiting ON sq_jobs (run_at) WHERE state = 'submitted' AND NOT ready;
-- Per queue: the oldest due job (queue latency); the leases to take back, soonest first.
CREATE INDEX sq_jobs_due ON sq_jobs (queue, run_at) WHERE state = 'submitted';
CREATE INDEX sq_jobs_leases ON sq_jobs (lease_expires_at) WHERE state = 'running';
-- Listing by state or queue in submission order; retention's oldest finished jobs.
CREATE INDEX sq_jobs_state ON sq_jobs (state, seq);
CREATE INDEX sq_jobs_in_queue ON sq_jobs (queue, seq);
CREATE INDEX sq_jobs_finished ON sq_jobs (state, finished_at) WHERE finished_at IS NOT NULL;
-- What retention leaves of a deleted job: its id stays "added once" (CONTRACT §9).
CREATE TABLE sq_tombstones (
    job_id            text COLLATE "C" PRIMARY KEY,
    queue             text COLLATE "C" NOT NULL,
    priority          int NOT NULL,
    max_attempts      int NOT NULL,
    description_hash  text,
    data_hash         text,
    state             text NOT NULL,
    created_at        timestamptz NOT NULL,
    finished_at       timestamptz NOT NULL,
    attempts          int NOT NULL
);
CREATE TABLE sq_counts (
    queue  text COLLATE "C" NOT NULL,
    state  text NOT NULL,
    slot   int NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (queue, state, slot)
);
-- The cumulative counters are the counts plus what left them (as in SQLite): jobs deleted, of
-- which finished, and finished jobs sent back to submitted. Rare moves; slotted all the same.
CREATE TABLE sq_totals (
    slot              int PRIMARY KEY,
    deleted           bigint NOT NULL,
    deleted_finished  bigint NOT NULL,
    reopened          bigint NOT NULL
);
-- The counter rows a connection writes: spread by backend, so that writers seldom share one.
CREATE FUNCTION sq_slot() RETURNS int LANGUAGE sql STABLE RETURN pg_backend_pid() % 16;
-- The channel a server LISTENs on: one per schema, so that other queues do not wake it.
CREATE FUNCTION sq_channel() RETURNS text LANGUAGE sql STABLE
RETURN 'simplequeue_' || md5(current_schema());
-- A job's errors with one more, the newest :keep kept. `at` and `error` are JSON strings.
CREATE FUNCTION sq_errors_with(errors text, attempt int, at text, error text, keep int)
RETURNS text LANGUAGE sql IMMUTABLE
RETURN (
    SELECT '[' || string_agg(entry, ',' ORDER BY n) || ']'
    FROM (
        SELECT entry, n FROM (
            SELECT entry::text, n
            FROM json_array_elements(errors::json) WITH ORDINALITY AS previous (entry, n)
            UNION ALL
            SELECT '{"attempt":' || attempt || ',"at":' || at || ',"error":' || error || '}',
                   9223372036854775807
        ) AS every ORDER BY n DESC LIMIT keep
    ) AS newest
);
-- Every statement that changes jobs: its counts, its totals, and a NOTIFY when it made a job
-- available (so that long-polls on other servers look). A submit of an id pruned while the
-- INSERT waited for the pruning transaction is undone (serialization_failure: the store tries
-- again, and then finds the tombstone), so a pruned id is never queued again.
CREATE FUNCTION sq_counted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    at_slot int := sq_slot();
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO sq_counts AS c (queue, state, slot, n)
        SELECT queue, state, at_slot, -count(*) FROM old_rows
        GROUP BY queue, state ORDER BY queue, state
        ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n;
        INSERT INTO sq_totals AS t (slot, deleted, deleted_finished, reopened)
        SELECT at_slot, count(*), count(*) FILTER (WHERE state IN ('succeeded', 'failed')), 0
        FROM old_rows HAVING count(*) > 0
        ON CONFLICT (slot) DO UPDATE SET deleted = t.deleted + excluded.deleted,
            deleted_finished = t.deleted_finished + excluded.deleted_finished;
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM new_rows JOIN sq_tombstones USING (job_id)) THEN
            RAISE EXCEPTION 'a job id was pruned while it was submitted again'
                USING ERRCODE = 'serialization_failure';
        END IF;
        INSERT INTO sq_counts AS c (queue, state, slot, n)
        SELECT queue, state, at_slot, count(*) FROM new_rows
        GROUP BY queue, state ORDER BY queue, state
        ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO sq_counts AS c (queue, state, slot, n)
        SELECT queue, state, at_slot, sum(delta) FROM (
            SELECT queue, state, 1 AS delta FROM new_rows
            UNION ALL
            SELECT queue, state, -1 FROM old_rows
        ) AS moved
        GROUP BY queue, state HAVING sum(delta) <> 0 ORDER BY queue, state
        ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n;
        IF EXISTS (SELECT 1 FROM old_rows WHERE state IN ('succeeded', 'failed')) THEN
            INSERT INTO sq_totals AS t (slot, deleted, deleted_finished, reopened)
            SELECT at_slot, 0, 0, count(*)
            FROM old_rows JOIN new_rows USING (seq)
            WHERE old_rows.state IN ('succeeded', 'failed')
              AND new_rows.state NOT IN ('succeeded', 'failed')
            HAVING count(*) > 0
            ON CONFLICT (slot) DO UPDATE SET reopened = t.reopened + excluded.reopened;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM new_rows WHERE state = 'submitted' AND ready) THEN
        PERFORM pg_notify(sq_channel(), '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sq_jobs_inserted AFTER INSERT ON sq_jobs
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sq_counted();
CREATE TRIGGER sq_jobs_updated AFTER UPDATE ON sq_jobs
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION sq_counted();
CREATE TRIGGER sq_jobs_deleted AFTER DELETE ON sq_jobs
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sq_counted();

-- name: job
job_id, description, data, state, created_at, started_at, finished_at, attempts, max_attempts,
lease_expires_at, result, errors, queue, priority, run_at

-- name: configure
SELECT set_config('TimeZone', 'UTC', false),
       set_config('statement_timeout', %(statement_timeout)s, false);

-- name: channel
SELECT sq_channel();

-- name: clock
SELECT clock_timestamp();

-- name: submit_many
-- Many at once, in the order given (so in submission order); an id already stored, repeated in
-- the batch, or with a tombstone is not inserted (the caller reads those back).
INSERT INTO sq_jobs (job_id, description, data, state, created_at, max_attempts, queue, priority,
                     run_at, ready)
SELECT new_id, new_description, new_data, 'submitted', new_created_at, new_max_attempts,
       new_queue, new_priority, new_run_at, new_run_at <= new_created_at
FROM unnest(%(job_ids)s::text[], %(descriptions)s::bytea[], %(data)s::text[],
            %(created_at)s::timestamptz[], %(max_attempts)s::int[], %(queues)s::text[],
            %(priorities)s::int[], %(run_at)s::timestamptz[]) WITH ORDINALITY
     AS item (new_id, new_description, new_data, new_created_at, new_max_attempts, new_queue,
              new_priority, new_run_at, n)
WHERE NOT EXISTS (SELECT 1 FROM sq_tombstones WHERE sq_tombstones.job_id = new_id)
ORDER BY n
ON CONFLICT (job_id) DO NOTHING
RETURNING {job};

-- name: get_many
SELECT {job} FROM sq_jobs WHERE job_id = ANY(%(job_ids)s::text[]);

-- name: tombstones
SELECT job_id, queue, priority, max_attempts, description_hash, data_hash, state, created_at,
       finished_at, attempts
FROM sq_tombstones WHERE job_id = ANY(%(job_ids)s::text[]);

-- name: promote
-- Scheduled jobs whose time has come join the hand-out order, the earliest due first, at most
-- :limit at once; ones another server is making ready are left to it.
UPDATE sq_jobs SET ready = true
WHERE seq IN (
    SELECT seq FROM sq_jobs
    WHERE state = 'submitted' AND NOT ready AND run_at <= %(now)s
    ORDER BY run_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
);

-- name: claim
-- The claim: up to :limit of the first ready jobs in the order of CONTRACT §8, skipping those
-- another claim holds (`candidates`: one of the two blocks below), each under one of the lease
-- ids in :lease_ids. A job taken back after its lease keeps its place (its run_at and seq).
WITH picked AS MATERIALIZED ({candidates}),
numbered AS (SELECT seq AS picked_seq, row_number() OVER () AS n FROM picked)
UPDATE sq_jobs
SET state = 'running', started_at = %(now)s, attempts = attempts + 1,
    lease_id = (%(lease_ids)s::text[])[n], lease_seconds = %(lease_seconds)s,
    lease_expires_at = %(until)s
FROM numbered
WHERE seq = picked_seq
RETURNING {job}, lease_id, seq;

-- name: candidates_any
SELECT seq FROM sq_jobs
WHERE state = 'submitted' AND ready AND priority IS NOT NULL  -- (see sq_jobs_ready)
ORDER BY priority DESC, run_at, seq LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: candidates_in
-- The head of each named queue, merged. Each queue's head is locked (skipped by other claims
-- until this one commits) though only :limit of them all are taken: while it runs, a claim of
-- another server may hand out a job a little later in the order than one locked here.
SELECT head.seq FROM unnest(%(queues)s::text[]) AS named (name)
CROSS JOIN LATERAL (
    SELECT seq, priority, run_at FROM sq_jobs
    WHERE state = 'submitted' AND ready AND queue = named.name
    ORDER BY priority DESC, run_at, seq LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS head
ORDER BY head.priority DESC, head.run_at, head.seq LIMIT %(limit)s

-- name: renew
UPDATE sq_jobs
SET lease_seconds = coalesce(%(lease_seconds)s::int, lease_seconds),
    lease_expires_at = %(now)s
        + coalesce(%(lease_seconds)s::int, lease_seconds) * interval '1 second'
WHERE job_id = %(job_id)s AND state = 'running' AND lease_id = %(lease_id)s
RETURNING {job}, lease_id;

-- name: end_attempts
-- Attempts end (a finish, a lease taken back): `target` (one of the blocks below) names the
-- jobs and how each ends; its `new_state` is decided on the locked row, so that what applies
-- is what `simplequeue.store.base.decide` says. The lease in `kept_lease` stays on the row:
-- the finishing lease, so that its repeats are recognised; NULL after an expiry or a finish
-- naming none, so that a late worker's completion is refused.
ended AS (
    UPDATE sq_jobs
    SET state = new_state,
        finished_at = CASE WHEN new_state IN ('succeeded', 'failed') THEN %(now)s END,
        run_at = CASE WHEN new_state = 'submitted' THEN coalesce(new_run_at, run_at)
                      ELSE run_at END,
        -- Due again at once (a lease taken back), or later (a retry's backoff).
        ready = new_state <> 'submitted' OR new_run_at IS NULL OR new_run_at <= %(now)s,
        result = new_result,
        errors = CASE WHEN new_error IS NULL THEN errors
                      ELSE sq_errors_with(errors, attempts, %(at)s, new_error, %(kept)s) END,
        lease_id = kept_lease,
        lease_expires_at = NULL
    FROM target
    WHERE seq = target_seq
    RETURNING {job}
)

-- name: finish
-- Endings named by the caller, each job at most once: every job named is locked, those
-- running under the lease named (or any, when none is) end, and each item's answer comes back
-- in order: (item, applied, the lease the lock found, the job's columns), with the job as it
-- is now when its attempt ended, else as the lock found it (for `decide` to say why not).
WITH item AS (
    SELECT * FROM unnest(%(job_ids)s::text[], %(lease_ids)s::text[], %(then)s::text[],
                         %(otherwise)s::text[], %(results)s::text[], %(errors)s::text[],
                         %(run_at)s::timestamptz[]) WITH ORDINALITY
        AS item (item_id, named_lease, then_state, otherwise_state, new_result, new_error,
                 new_run_at, n)
),
locked AS MATERIALIZED (
    SELECT seq AS locked_seq, lease_id AS locked_lease, {job}
    FROM sq_jobs WHERE job_id IN (SELECT item_id FROM item) ORDER BY seq FOR UPDATE
),
target AS (
    SELECT locked_seq AS target_seq, new_result, new_error, new_run_at,
           named_lease AS kept_lease,
           CASE WHEN attempts < max_attempts THEN then_state ELSE otherwise_state END
               AS new_state
    FROM locked JOIN item ON item_id = job_id
    WHERE state = 'running' AND (named_lease IS NULL OR locked_lease = named_lease)
),
{end_attempts}
SELECT n, true, NULL, ended.* FROM item JOIN ended ON ended.job_id = item_id
UNION ALL
SELECT n, false, locked_lease, {job} FROM item JOIN locked ON job_id = item_id
WHERE NOT EXISTS (SELECT 1 FROM ended WHERE ended.job_id = item_id)
ORDER BY 1;

-- name: expire
-- Leases that ended at or before :now, soonest first, at most :limit; ones another server is
-- taking back are left to it.
WITH target AS (
    SELECT seq AS target_seq, NULL::text AS new_result, %(error)s::text AS new_error,
           %(run_at)s::timestamptz AS new_run_at, NULL::text AS kept_lease,
           CASE WHEN attempts < max_attempts THEN %(then)s ELSE %(otherwise)s END AS new_state
    FROM sq_jobs
    WHERE state = 'running' AND lease_expires_at <= %(now)s
    ORDER BY lease_expires_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
{end_attempts}
SELECT count(*) FROM ended;

-- name: release
UPDATE sq_jobs
SET state = 'submitted', ready = true, attempts = attempts - 1, lease_id = NULL,
    lease_expires_at = NULL,
    started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END
WHERE job_id = %(job_id)s AND lease_id = %(lease_id)s AND state = 'running';

-- name: next_due
SELECT run_at FROM sq_jobs
WHERE state = 'submitted' AND NOT ready AND run_at > %(now)s
ORDER BY run_at LIMIT 1;

-- name: move_to_failed
-- An operator's move (CONTRACT §9) of the jobs whose seq is in :seqs and state in :sources.
-- To failed: finished now, the lease over, :error recorded as the current attempt's (the
-- newest :kept errors stay). To submitted: due now, one more attempt allowed if all were used.
UPDATE sq_jobs
SET state = 'failed', finished_at = %(now)s, lease_id = NULL, lease_expires_at = NULL,
    errors = CASE WHEN %(error)s::text IS NULL THEN errors
                  ELSE sq_errors_with(errors, attempts, %(at)s, %(error)s, %(kept)s) END
WHERE seq = ANY(%(seqs)s::bigint[]) AND state = ANY(%(sources)s::text[])
RETURNING {job};

-- name: move_to_submitted
UPDATE sq_jobs
SET state = 'submitted', finished_at = NULL, lease_id = NULL, lease_expires_at = NULL,
    run_at = %(now)s, ready = true,
    max_attempts_sent = coalesce(max_attempts_sent, max_attempts),
    max_attempts = greatest(max_attempts, attempts + 1)
WHERE seq = ANY(%(seqs)s::bigint[]) AND state = ANY(%(sources)s::text[])
RETURNING {job};

-- name: seqs
SELECT seq FROM sq_jobs WHERE job_id = ANY(%(job_ids)s::text[]);

-- name: window_in_state
-- One chunk of a move by filter: a window of at most :limit jobs of one state after :after in
-- submission order, of which those matching the filter move; its last seq is where the next
-- chunk starts. (`window_all` serves a filter of several states, which the queue never sends.)
SELECT seq, state, job_id, queue FROM sq_jobs
WHERE state = %(state)s AND seq > %(after)s ORDER BY seq LIMIT %(limit)s;

-- name: window_all
SELECT seq, state, job_id, queue FROM sq_jobs WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s;

-- name: prunable
-- Retention: the oldest finished jobs of a state with what their tombstones keep, read without
-- locking (the fingerprints are computed between this read and the delete), at most about
-- :bytes of description and data (sizes from the row headers: nothing is fetched to count).
SELECT seq, job_id, queue, priority, max_attempts, description, data, state, created_at,
       finished_at, attempts
FROM (
    SELECT *, sum(size) OVER (ORDER BY finished_at, seq) - size AS before_it
    FROM (
        SELECT seq, job_id, queue, priority, coalesce(max_attempts_sent, max_attempts)
                   AS max_attempts,
               description, data, state, created_at, finished_at, attempts,
               coalesce(octet_length(description), 0) + coalesce(octet_length(data), 0) AS size
        FROM sq_jobs WHERE state = %(state)s AND finished_at < %(before)s
        ORDER BY finished_at, seq LIMIT %(limit)s
    ) AS oldest
) AS sized
WHERE before_it < %(bytes)s
ORDER BY finished_at, seq;

-- name: bury
-- The jobs read by `prunable` that are still as they were then (the same state and finish:
-- not retried since) are deleted, each leaving its tombstone, in one statement.
WITH deleted AS (
    DELETE FROM sq_jobs
    USING unnest(%(seqs)s::bigint[], %(finished_at)s::timestamptz[]) AS seen (seq, finished_at)
    WHERE sq_jobs.seq = seen.seq AND sq_jobs.finished_at = seen.finished_at
      AND sq_jobs.state = %(state)s
    RETURNING job_id
), buried AS (
    INSERT INTO sq_tombstones (job_id, queue, priority, max_attempts, description_hash,
                               data_hash, state, created_at, finished_at, attempts)
    SELECT * FROM unnest(%(job_ids)s::text[], %(queues)s::text[], %(priorities)s::int[],
                         %(max_attempts)s::int[], %(description_hashes)s::text[],
                         %(data_hashes)s::text[], %(states)s::text[],
                         %(created_at)s::timestamptz[], %(finished_at)s::timestamptz[],
                         %(attempts)s::int[]) AS tombstone (job_id)
    WHERE tombstone.job_id IN (SELECT job_id FROM deleted)
    ON CONFLICT (job_id) DO NOTHING
)
SELECT count(*) FROM deleted;

-- name: max_attempts_sent
SELECT coalesce(max_attempts_sent, max_attempts) FROM sq_jobs WHERE job_id = %(job_id)s;

-- name: snapshot
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: get
SELECT {job} FROM sq_jobs WHERE job_id = %(job_id)s;

-- name: seq_of
SELECT seq FROM sq_jobs WHERE job_id = %(job_id)s;

-- name: list
-- A page of jobs in submission order; `filters` are the blocks below that the call needs.
SELECT {job} FROM sq_jobs
WHERE seq > %(after_seq)s AND seq < %(before_seq)s {filters}
ORDER BY seq {direction} LIMIT %(limit)s;

-- name: list_in_states
AND state = ANY(%(states)s::text[])

-- name: list_in_queues
AND queue = ANY(%(queues)s::text[])

-- name: list_with_prefix
-- A prefix is a range of the job_id index (byte order): [:prefix, :prefix_end).
AND job_id >= %(prefix)s AND job_id < %(prefix_end)s

-- name: totals
-- The cumulative counters: jobs ever added, and times a job became succeeded or failed.
SELECT ((SELECT coalesce(sum(n), 0) FROM sq_counts)
        + (SELECT coalesce(sum(deleted), 0) FROM sq_totals))::bigint,
       ((SELECT coalesce(sum(n), 0) FROM sq_counts WHERE state IN ('succeeded', 'failed'))
        + (SELECT coalesce(sum(deleted_finished + reopened), 0) FROM sq_totals))::bigint;

-- name: stats
-- Counts per queue and state, with each queue's oldest submitted job (from the sq_jobs_due
-- index), read in one snapshot with the totals.
SELECT queue, state, n::bigint,
       CASE WHEN state = 'submitted' THEN (
           SELECT min(run_at) FROM sq_jobs
           WHERE sq_jobs.state = 'submitted' AND sq_jobs.queue = counted.queue
       ) END
FROM (SELECT queue, state, sum(n) AS n FROM sq_counts GROUP BY queue, state) AS counted
WHERE n > 0
ORDER BY queue;

-- name: export
-- `sq copy`: a chunk of jobs in submission order with what no answer shows (the lease, the
-- maxAttempts the submit sent), and the tombstones in the byte order of their ids.
SELECT {job}, lease_id, lease_seconds, coalesce(max_attempts_sent, max_attempts), seq
FROM sq_jobs WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s;

-- name: export_tombstones
SELECT job_id, queue, priority, max_attempts, description_hash, data_hash, state, created_at,
       finished_at, attempts
FROM sq_tombstones WHERE job_id > %(after)s ORDER BY job_id LIMIT %(limit)s;

-- name: load
-- Exported jobs, after every job here (new seqs, in the order given), but for ids taken by a
-- job or a tombstone. Ready when due at :now, as a submit makes it; max_attempts_sent stays
-- NULL unless it differs (see sq_jobs).
INSERT INTO sq_jobs (job_id, description, data, state, created_at, started_at, finished_at,
                     attempts, max_attempts, lease_expires_at, result, errors, queue, priority,
                     run_at, lease_id, lease_seconds, max_attempts_sent, ready)
SELECT new_id, new_description, new_data, new_state, new_created_at, new_started_at,
       new_finished_at, new_attempts, new_max_attempts, new_lease_expires_at, new_result,
       new_errors, new_queue, new_priority, new_run_at, new_lease_id, new_lease_seconds,
       nullif(new_max_attempts_sent, new_max_attempts), new_run_at <= %(now)s
FROM unnest(%(job_ids)s::text[], %(descriptions)s::bytea[], %(data)s::text[],
            %(states)s::text[], %(created_at)s::timestamptz[], %(started_at)s::timestamptz[],
            %(finished_at)s::timestamptz[], %(attempts)s::int[], %(max_attempts)s::int[],
            %(lease_expires_at)s::timestamptz[], %(results)s::text[], %(errors)s::text[],
            %(queues)s::text[], %(priorities)s::int[], %(run_at)s::timestamptz[],
            %(lease_ids)s::text[], %(lease_seconds)s::int[], %(max_attempts_sent)s::int[])
     WITH ORDINALITY
     AS item (new_id, new_description, new_data, new_state, new_created_at, new_started_at,
              new_finished_at, new_attempts, new_max_attempts, new_lease_expires_at,
              new_result, new_errors, new_queue, new_priority, new_run_at, new_lease_id,
              new_lease_seconds, new_max_attempts_sent, n)
WHERE NOT EXISTS (SELECT 1 FROM sq_tombstones WHERE sq_tombstones.job_id = new_id)
ORDER BY n
ON CONFLICT (job_id) DO NOTHING;

-- name: load_tombstones
INSERT INTO sq_tombstones (job_id, queue, priority, max_attempts, description_hash, data_hash,
                           state, created_at, finished_at, attempts)
SELECT * FROM unnest(%(job_ids)s::text[], %(queues)s::text[], %(priorities)s::int[],
                     %(max_attempts)s::int[], %(description_hashes)s::text[],
                     %(data_hashes)s::text[], %(states)s::text[],
                     %(created_at)s::timestamptz[], %(finished_at)s::timestamptz[],
                     %(attempts)s::int[]) AS tombstone (job_id)
WHERE NOT EXISTS (SELECT 1 FROM sq_jobs WHERE sq_jobs.job_id = tombstone.job_id)
ON CONFLICT (job_id) DO NOTHING;

-- name: load_totals
-- The loaded jobs count themselves (the trigger). A loaded tombstone is a job added and
-- finished, now deleted; :submitted and :completed are what the source counted beyond its jobs
-- and tombstones (an operator's retries), kept where `totals` adds them in.
INSERT INTO sq_totals AS t (slot, deleted, deleted_finished, reopened)
VALUES (sq_slot(), %(tombstones)s + %(submitted)s, %(tombstones)s, %(completed)s)
ON CONFLICT (slot) DO UPDATE SET deleted = t.deleted + excluded.deleted,
    deleted_finished = t.deleted_finished + excluded.deleted_finished,
    reopened = t.reopened + excluded.reopened;
