-- Retention and erasure (plugins/finflows/flows/retention). Each retention step is recorded with
-- what it exported (the manifest in the archive bucket) and what it removed; each erasure with who
-- asked, why, and how many rows changed, never the person's id itself (its sha256 only).
CREATE TABLE ops.retention_run (
    id            bigserial   PRIMARY KEY,
    kind          text        NOT NULL,             -- payments, card_facts, health_checks, tenure_event_bodies
    cutoff        timestamptz NOT NULL,             -- rows older than this were due
    rows_exported bigint      NOT NULL DEFAULT 0,
    rows_removed  bigint      NOT NULL DEFAULT 0,   -- removed, or (tenure_event_bodies) emptied
    manifest      text,                             -- s3://… of the manifest (NULL: nothing was due)
    dag_run_id    text,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retention_run_kind_at ON ops.retention_run (kind, at DESC);

CREATE TABLE ops.erasure (
    id              bigserial   PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('payee', 'tenure')),
    subject_sha256  char(64)    NOT NULL,           -- sha256 of the id erased: proves which, keeps nothing
    rows_changed    integer     NOT NULL,
    requested_by    text        NOT NULL CHECK (requested_by <> ''),
    reason          text        NOT NULL CHECK (reason <> ''),
    at              timestamptz NOT NULL DEFAULT now()
);

-- the retention queries look by age
CREATE INDEX IF NOT EXISTS payment_created_at ON pay.payment (created_at);
CREATE INDEX IF NOT EXISTS health_check_checked_at ON pay.health_check (checked_at);
CREATE INDEX IF NOT EXISTS fact_transaction_txn_date ON card.fact_transaction (txn_date);
CREATE INDEX IF NOT EXISTS tenure_event_received_at ON ops.tenure_event (received_at) WHERE snapshot IS NOT NULL;
