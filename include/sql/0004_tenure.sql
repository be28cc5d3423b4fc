-- tenure_sync: tenure create/update events → interim finance spreadsheet and/or ifs.tenancy.

-- Every message received, one row per SQS message id (a redelivered message is the same row).
-- An event delivered twice under two message ids is kept once: event_id is unique.
-- status: pending (waiting to be applied, e.g. its rent account does not exist yet),
--         applied, stale (an equal or newer version was already applied), rejected (poison: sent
--         to the dead-letter queue with the reason recorded here).
CREATE TABLE ops.tenure_event (
    message_id   text        PRIMARY KEY,
    event_id     uuid        UNIQUE,
    event_type   text,
    tenure_id    uuid,
    version      integer,
    occurred_at  timestamptz,
    rent_group   text,
    snapshot     jsonb,
    status       text        NOT NULL CHECK (status IN ('pending', 'applied', 'stale', 'rejected')),
    reason       text,
    attempts     integer     NOT NULL DEFAULT 0,
    received_at  timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz,
    dag_run_id   text,
    CHECK (status = 'rejected' OR (event_id IS NOT NULL AND tenure_id IS NOT NULL AND version IS NOT NULL))
);
CREATE INDEX tenure_event_pending ON ops.tenure_event (tenure_id, version) WHERE status = 'pending';

-- The last version applied per tenure and per target, so an older or repeated event changes nothing
-- and switching the target from `sheet` to `both` later still applies what the database lacks.
CREATE TABLE ops.tenure_sync_state (
    tenure_id         uuid        PRIMARY KEY,
    sheet_version     integer,
    database_version  integer,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The interim finance tenancy table: the spreadsheet's columns A:M, keyed by payment reference,
-- written directly when the target is `database` or `both` (the seed's plan to phase out the sheet).
CREATE TABLE ifs.tenancy (
    payment_ref    char(10)    PRIMARY KEY CHECK (payment_ref ~ '^[0-9]{10}$'),
    tenure_id      uuid        NOT NULL,
    rent_group     text        NOT NULL,
    tenure_type    text        NOT NULL,
    start_date     date        NOT NULL,
    end_date       date,
    property_ref   text        NOT NULL,
    short_address  text        NOT NULL,
    address        text        NOT NULL,
    post_code      text        NOT NULL,
    num_bedrooms   smallint,
    title          text,
    forename       text        NOT NULL,
    surname        text        NOT NULL,
    date_of_birth  date,
    version        integer     NOT NULL,
    event_id       uuid        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenancy_tenure ON ifs.tenancy (tenure_id);
CREATE INDEX rent_account_tenure ON ifs.rent_account (tenure_id);
