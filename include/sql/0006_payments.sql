-- Bank payments (bank_payments, bank_transfer_retry; reconciliation builds on it).
--
-- A payment instruction moves through a state machine enforced here, whoever updates it:
--   pending → batched → uploaded → settled | returned | failed
--   batched → pending (its batch was cancelled before delivery: it rolls to a later batch)
--   batched | pending → failed (cancelled by a person)
-- Every change of status is appended to pay.payment_event with the run that made it.
CREATE SCHEMA IF NOT EXISTS pay;

-- Business days: Monday to Friday unless listed here. Holidays (is_business = false) and the
-- Saturdays Taiwan works to make up for bridge holidays (is_business = true). Load each year's
-- calendar from the Directorate-General of Personnel Administration before its first payment day.
CREATE TABLE pay.calendar (
    day          date    PRIMARY KEY,
    is_business  boolean NOT NULL,
    name         text    NOT NULL
);

CREATE FUNCTION pay.is_business_day(d date) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT c.is_business FROM pay.calendar c WHERE c.day = d), extract(isodow FROM d) < 6)
$$;

CREATE FUNCTION pay.next_business_day(d date) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT min(x)::date FROM generate_series(d + 1, d + 60, interval '1 day') x WHERE pay.is_business_day(x::date)
$$;

CREATE FUNCTION pay.previous_business_day(d date) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT max(x)::date FROM generate_series(d - 60, d - 1, interval '1 day') x WHERE pay.is_business_day(x::date)
$$;

INSERT INTO pay.calendar (day, is_business, name) VALUES
    ('2026-01-01', false, 'Founding of the Republic of China'),
    ('2026-02-16', false, 'Lunar New Year''s Eve'),
    ('2026-02-17', false, 'Lunar New Year'),
    ('2026-02-18', false, 'Lunar New Year'),
    ('2026-02-19', false, 'Lunar New Year'),
    ('2026-02-20', false, 'Lunar New Year (bridge)'),
    ('2026-02-27', false, 'Peace Memorial Day (observed)'),
    ('2026-04-03', false, 'Children''s Day (observed)'),
    ('2026-04-06', false, 'Tomb Sweeping Day (observed)'),
    ('2026-05-01', false, 'Labour Day'),
    ('2026-06-19', false, 'Dragon Boat Festival'),
    ('2026-09-25', false, 'Mid-Autumn Festival'),
    ('2026-09-28', false, 'Teachers'' Day'),
    ('2026-10-09', false, 'National Day (observed)'),
    ('2026-10-26', false, 'Retrocession Day (observed)'),
    ('2026-12-25', false, 'Constitution Day');

CREATE TABLE pay.batch (
    id               bigserial   PRIMARY KEY,
    bank             text        NOT NULL,              -- the bank configuration id (mega, ctbc, …)
    processing_date  date        NOT NULL,
    batch_no         integer     NOT NULL CHECK (batch_no BETWEEN 1 AND 999),
    file_name        text        NOT NULL,
    file_format      text        NOT NULL CHECK (file_format IN ('achp01', 'csv')),
    status           text        NOT NULL DEFAULT 'batched'
                     CHECK (status IN ('batched', 'uploaded', 'queued', 'cancelled', 'failed')),
    payment_count    integer     NOT NULL CHECK (payment_count > 0),
    total_amount     numeric(15, 0) NOT NULL,
    plain_sha256     char(64),
    plain_bytes      bigint,
    cipher_sha256    char(64),
    cipher_bytes     bigint,
    archive_uri      text,                              -- the encrypted file as sent, kept in S3
    dag_run_id       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    uploaded_at      timestamptz,
    UNIQUE (bank, processing_date, batch_no),
    UNIQUE (bank, file_name)
);

CREATE TABLE pay.payment (
    id             bigserial   PRIMARY KEY,
    reference      text        NOT NULL UNIQUE CHECK (reference ~ '^[0-9A-Za-z-]{1,20}$'),
    bank           text        NOT NULL,                -- which of our banks pays it
    payee_bank     char(7)     NOT NULL CHECK (payee_bank ~ '^[0-9]{7}$'),
    payee_account  varchar(16) NOT NULL CHECK (payee_account ~ '^[0-9]{1,16}$'),
    payee_id       varchar(10) NOT NULL CHECK (payee_id ~ '^[ -~]{1,10}$'),
    payee_name     text        NOT NULL CHECK (payee_name <> ''),
    memo           text        NOT NULL DEFAULT '',
    txn_code       char(3)     NOT NULL DEFAULT '101' CHECK (txn_code ~ '^[0-9]{3}$'),
    amount         numeric(10, 0) NOT NULL CHECK (amount > 0),   -- whole NTD
    due_date       date        NOT NULL,
    status         text        NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'batched', 'uploaded', 'settled', 'returned', 'failed')),
    batch_id       bigint      REFERENCES pay.batch (id),
    seq            integer,                             -- its sequence number in the batch's file
    value_date     date,                                -- the processing date it was batched for
    return_reason  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'pending') = (batch_id IS NULL) OR status = 'failed'),
    UNIQUE (batch_id, seq)
);
CREATE INDEX payment_pending ON pay.payment (bank, due_date) WHERE status = 'pending';
CREATE INDEX payment_batch ON pay.payment (batch_id);

CREATE TABLE pay.payment_event (
    id           bigserial   PRIMARY KEY,
    payment_id   bigint      NOT NULL REFERENCES pay.payment (id),
    from_status  text,
    to_status    text        NOT NULL,
    batch_id     bigint,
    detail       text,
    dag_run_id   text,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_event_payment ON pay.payment_event (payment_id);

-- The state machine and its audit trail. Writers say who they are with
--   SELECT set_config('finflows.run_id', <run id>, true), set_config('finflows.reason', <why>, true)
CREATE FUNCTION pay.payment_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.status, NEW.status) NOT IN (
        ('pending', 'batched'), ('batched', 'uploaded'), ('batched', 'pending'),
        ('uploaded', 'settled'), ('uploaded', 'returned'), ('uploaded', 'failed'),
        ('batched', 'failed'), ('pending', 'failed')) THEN
        RAISE EXCEPTION 'payment %: % → % is not an allowed transition', OLD.reference, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE FUNCTION pay.payment_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pay.payment_event (payment_id, from_status, to_status, batch_id, detail, dag_run_id)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status, NEW.batch_id,
            nullif(current_setting('finflows.reason', true), ''), nullif(current_setting('finflows.run_id', true), ''));
    RETURN NULL;
END $$;

CREATE TRIGGER payment_guard BEFORE UPDATE OF status ON pay.payment
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION pay.payment_guard();
CREATE TRIGGER payment_created AFTER INSERT ON pay.payment
    FOR EACH ROW EXECUTE FUNCTION pay.payment_audit();
CREATE TRIGGER payment_moved AFTER UPDATE OF status ON pay.payment
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION pay.payment_audit();

-- Every delivery of a batch file: one row per attempt run (attempts counts the tries inside it).
CREATE TABLE pay.transfer (
    id              bigserial   PRIMARY KEY,
    batch_id        bigint      NOT NULL REFERENCES pay.batch (id),
    bank            text        NOT NULL,
    file_name       text        NOT NULL,
    remote_path     text        NOT NULL,
    plain_sha256    char(64)    NOT NULL,
    cipher_sha256   char(64)    NOT NULL,
    bytes           bigint      NOT NULL,
    payment_count   integer     NOT NULL,
    total_amount    numeric(15, 0) NOT NULL,
    attempts        integer     NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('uploaded', 'already_there', 'failed')),
    error           text,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT now(),
    dag_run_id      text
);
CREATE INDEX transfer_batch ON pay.transfer (batch_id);
-- a batch reaches its bank once: at most one successful transfer row
CREATE UNIQUE INDEX transfer_delivered_once ON pay.transfer (batch_id) WHERE outcome <> 'failed';

-- Transfers that still failed after their retries; bank_transfer_retry works them off hourly.
CREATE TABLE pay.transfer_retry (
    batch_id         bigint      PRIMARY KEY REFERENCES pay.batch (id),
    status           text        NOT NULL DEFAULT 'waiting'
                     CHECK (status IN ('waiting', 'delivered', 'expired', 'gave_up')),
    attempts         integer     NOT NULL DEFAULT 0,   -- retry-DAG attempts so far
    last_error       text,
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfer_retry_waiting ON pay.transfer_retry (next_attempt_at) WHERE status = 'waiting';
