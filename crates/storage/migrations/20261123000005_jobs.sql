-- Background jobs, for deployments without Redis: the durable queue of `clubpulse-jobs`
-- (`PgBackend`). With Redis configured these tables stay empty.
--
-- A job is a row from enqueue until it completes (the row is deleted) or is purged from the
-- dead-letter queue. Workers reserve rows with `FOR UPDATE SKIP LOCKED`, so concurrent workers
-- never wait on each other's rows and never take the same one. Every time below is the database
-- server's clock (`now()`), so instances with skewed clocks agree on run-at and lease deadlines.
CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    -- Picks the handler; the worker fails (and eventually dead-letters) a kind it does not know.
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    -- queued: waiting, visible once run_at has passed (a retry is a queued row with a later
    --         run_at);
    -- running: reserved by a worker until lease_until, which the worker keeps pushing forward
    --          while the handler runs; past it, the next reserve takes the job back;
    -- dead: failed for good, kept for inspection, retry or purge.
    state        text NOT NULL DEFAULT 'queued'
                 CONSTRAINT jobs_state_check CHECK (state IN ('queued', 'running', 'dead')),
    run_at       timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz,
    -- Incremented by each reserve. With the id it names one reservation: completing or failing
    -- a job requires the attempt the worker was given, so a worker whose lease was taken back
    -- cannot finish a job someone else is now running.
    attempts     integer NOT NULL DEFAULT 0 CONSTRAINT jobs_attempts_check CHECK (attempts >= 0),
    -- The job's own limit; NULL leaves it to the worker pool's setting.
    max_attempts integer CONSTRAINT jobs_max_attempts_check CHECK (max_attempts >= 1),
    -- At most one live job per key: see jobs_unique_key_live.
    unique_key   text,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    dead_at      timestamptz,
    -- A lease exactly while running, so a running row can always be reclaimed and no other row
    -- can look reserved.
    CONSTRAINT jobs_lease_check CHECK ((state = 'running') = (lease_until IS NOT NULL)),
    -- A death time exactly while dead, which orders the dead-letter listing.
    CONSTRAINT jobs_dead_check CHECK ((state = 'dead') = (dead_at IS NOT NULL))
);

-- Unique jobs: a key is held by a live (queued or running) job only. Enqueue relies on it with
-- `ON CONFLICT … DO NOTHING` instead of checking first; completing (deleting) or dead-lettering
-- the job frees the key with no extra step. Reviving a dead job whose key a live job took
-- meanwhile violates it, and that job stays dead.
CREATE UNIQUE INDEX jobs_unique_key_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state <> 'dead';

-- Reserve: the oldest due queued rows. Ids are UUIDv7, so (run_at, id) is first in, first out.
CREATE INDEX jobs_queued_run_at ON jobs (run_at, id) WHERE state = 'queued';

-- Reclaim: running rows whose lease expired.
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE state = 'running';

-- The dead-letter listing, most recent first.
CREATE INDEX jobs_dead_at ON jobs (dead_at DESC, id DESC) WHERE state = 'dead';

-- Cumulative counters shared by every instance: jobs completed, and attempts failed (a job that
-- fails three times counts three). One row each, updated once per acknowledged batch.
CREATE TABLE job_counters (
    name  text PRIMARY KEY CONSTRAINT job_counters_name_check CHECK (name IN ('processed', 'failed')),
    value bigint NOT NULL DEFAULT 0 CONSTRAINT job_counters_value_check CHECK (value >= 0)
);
INSERT INTO job_counters (name) VALUES ('processed'), ('failed');

-- Worker pools' heartbeats. A pool that stops deletes its row; one that dies stops refreshing
-- it, and after expires_at it is ignored and deleted by the next heartbeat of any pool.
CREATE TABLE job_workers (
    id          text PRIMARY KEY,
    concurrency integer NOT NULL CONSTRAINT job_workers_concurrency_check CHECK (concurrency >= 1),
    busy        integer NOT NULL CONSTRAINT job_workers_busy_check CHECK (busy >= 0),
    seen_at     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Periodic schedules: the last tick (whole periods since the Unix epoch) for which a job was
-- enqueued. Every instance runs the scheduler; the conditional upsert on this row lets exactly
-- one of them claim each tick, even after that tick's job has completed and freed its unique key.
CREATE TABLE job_periodic (
    name      text PRIMARY KEY,
    last_tick bigint NOT NULL
);
