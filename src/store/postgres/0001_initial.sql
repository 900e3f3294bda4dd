-- The tables of the SQLite store, for several replicas. Times are Unix
-- seconds (BIGINT) as in SQLite; leases are read against the database clock,
-- so replicas whose clocks drift still agree on who holds what.

CREATE SEQUENCE journal_id_seq;
-- Acknowledged batches not yet folded into `buckets`; `agents` lets a draft
-- read the unfolded batches of one agent.
CREATE TABLE journal (
    id BIGINT PRIMARY KEY DEFAULT nextval('journal_id_seq'),
    received_at BIGINT NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    agents TEXT[] NOT NULL,
    body BYTEA NOT NULL
);
ALTER SEQUENCE journal_id_seq OWNED BY journal.id;
CREATE INDEX journal_agents ON journal USING GIN (agents);
CREATE INDEX journal_stored_at ON journal (stored_at);

CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    body_sha256 TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX idempotency_received_at ON idempotency (received_at);

CREATE TABLE buckets (
    agent TEXT NOT NULL,
    day BIGINT NOT NULL,
    summary BYTEA NOT NULL,
    shapes BIGINT NOT NULL,
    PRIMARY KEY (agent, day)
);

CREATE TABLE jobs (
    agent TEXT PRIMARY KEY,
    due_at BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_by TEXT,
    lease_until BIGINT
);

CREATE TABLE proposals (
    agent TEXT PRIMARY KEY,
    number BIGINT NOT NULL,
    head TEXT NOT NULL,
    digest TEXT NOT NULL,
    url TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE proposal_rules (
    agent TEXT NOT NULL,
    id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (agent, id)
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    delivery TEXT NOT NULL,
    event TEXT NOT NULL,
    payload BYTEA NOT NULL,
    due_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_by TEXT,
    lease_until BIGINT
);

CREATE TABLE rejections (
    agent TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    calls BIGINT NOT NULL,
    reason TEXT NOT NULL,
    permanent BOOLEAN NOT NULL,
    PRIMARY KEY (agent, fingerprint)
);

CREATE TABLE ignored_tools (
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (agent, tool)
);

CREATE TABLE promotions (
    agent TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    pull BIGINT NOT NULL,
    merged_at BIGINT NOT NULL,
    PRIMARY KEY (agent, rule_id)
);

CREATE TABLE installations (
    id BIGINT PRIMARY KEY,
    repositories TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE nodes (
    source TEXT PRIMARY KEY,
    policy_commit TEXT NOT NULL,
    seen_at BIGINT NOT NULL
);

CREATE TABLE rollouts (
    pull BIGINT PRIMARY KEY,
    agent TEXT NOT NULL,
    merge_commit TEXT NOT NULL,
    announced BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE local_pulls (
    number BIGSERIAL PRIMARY KEY,
    agent TEXT NOT NULL,
    branch TEXT NOT NULL,
    base TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE local_comments (
    id BIGSERIAL PRIMARY KEY,
    number BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE catalogues (
    server TEXT PRIMARY KEY,
    catalogue TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
