-- bank_health: every check of each bank's SFTP server, and each bank's circuit breaker.
CREATE TABLE pay.health_check (
    id          bigserial   PRIMARY KEY,
    bank        text        NOT NULL,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    ok          boolean     NOT NULL,
    latency_ms  integer     NOT NULL CHECK (latency_ms >= 0),   -- login + stat of the upload directory
    error       text,
    circuit     text        NOT NULL CHECK (circuit IN ('closed', 'open')),  -- the circuit after this check
    dag_run_id  text
);
CREATE INDEX health_check_bank ON pay.health_check (bank, checked_at DESC);

-- One row per bank once it has been checked. closed: payments flow. open: bank_payments skips the
-- bank; from opened_at + the cool-down it is half-open and the next health check decides.
CREATE TABLE pay.circuit (
    bank                  text        PRIMARY KEY,
    state                 text        NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open')),
    consecutive_failures  integer     NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    opened_at             timestamptz,
    last_checked_at       timestamptz,
    last_error            text,
    CHECK ((state = 'open') = (opened_at IS NOT NULL))
);
