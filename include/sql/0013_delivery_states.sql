-- A batch's delivery to its bank is a recorded state machine: money moves at most once.
--
--   batched ─┬─► sending/part ──► sending/rename ──► uploaded
--   queued ──┘        │                  │  └──────► uncertain ──► uploaded  (a person: "the bank has it")
--      ▲              │                  │                   └──► queued    (a person: "resend")
--      └──────────────┘ (failed before   └─ (past the cutoff: the .part removed, the final name absent)
--                        the rename)          ──► cancelled
--   batched | queued | sending/part ──► cancelled (past the bank's cutoff; nothing can have reached it)
--
-- sending/part is committed before the first byte leaves and sending/rename before the rename is
-- sent: a bank only takes a file under its final name, so while the record says "part" nothing has
-- reached the bank, whatever happened to the worker. Once it says "rename", only the server can tell
-- (our bytes under the final name, or our NAME.part still there to rename); when it cannot, the batch
-- is "uncertain" and waits for a person's decision, recorded here. Nothing resends it by itself.
ALTER TABLE pay.batch DROP CONSTRAINT batch_status_check;
ALTER TABLE pay.batch ADD CONSTRAINT batch_status_check
    CHECK (status IN ('batched', 'sending', 'uploaded', 'queued', 'uncertain', 'cancelled', 'failed'));
ALTER TABLE pay.batch
    ADD COLUMN send_step        text CHECK (send_step IN ('part', 'rename')),
    ADD COLUMN send_attempt     integer NOT NULL DEFAULT 0,   -- deliveries started (sending/part commits)
    ADD COLUMN remote_path      text,                         -- the final name on the bank's server
    ADD COLUMN uncertain_reason text,                         -- what was known when it became uncertain
    ADD COLUMN decision         text CHECK (decision IN ('bank_has_it', 'resend')),
    ADD COLUMN decided_by       text,
    ADD COLUMN decided_at       timestamptz,
    ADD COLUMN decision_note    text,
    ADD CONSTRAINT batch_sending_has_step CHECK ((status = 'sending') = (send_step IS NOT NULL)),
    ADD CONSTRAINT batch_decision_complete
        CHECK ((decision IS NULL) = (decided_by IS NULL) AND (decision IS NULL) = (decided_at IS NULL));

-- Every change of a batch's status or send step, with the run or person that made it.
CREATE TABLE pay.batch_event (
    id           bigserial   PRIMARY KEY,
    batch_id     bigint      NOT NULL REFERENCES pay.batch (id),
    from_status  text,
    to_status    text        NOT NULL,
    send_step    text,
    send_attempt integer,
    detail       text,
    decided_by   text,
    dag_run_id   text,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batch_event_batch ON pay.batch_event (batch_id);

CREATE FUNCTION pay.batch_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status AND (OLD.status, NEW.status) NOT IN (
        ('batched', 'sending'), ('queued', 'sending'),
        ('sending', 'uploaded'), ('sending', 'queued'), ('sending', 'uncertain'), ('sending', 'cancelled'),
        ('uncertain', 'uploaded'), ('uncertain', 'queued'),
        ('batched', 'cancelled'), ('queued', 'cancelled'),
        ('batched', 'failed'), ('queued', 'failed')) THEN
        RAISE EXCEPTION 'batch %: % → % is not an allowed transition', OLD.file_name, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'sending' AND OLD.send_step = 'rename' AND NEW.status IN ('queued', 'cancelled')
       AND current_setting('finflows.part_removed', true) IS DISTINCT FROM 'yes' THEN
        RAISE EXCEPTION 'batch %: its rename may have been sent; % needs proof that nothing reached the bank',
            OLD.file_name, NEW.status USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'sending' AND NEW.status = 'sending' AND OLD.send_step = 'rename' AND NEW.send_step = 'part' THEN
        RAISE EXCEPTION 'batch %: a rename may have been sent; it cannot go back to writing a part', OLD.file_name
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'uncertain' AND NEW.status <> 'uncertain' AND NEW.decided_by IS NULL THEN
        RAISE EXCEPTION 'batch %: an uncertain delivery leaves that state only by a recorded decision', OLD.file_name
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION pay.batch_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pay.batch_event (batch_id, from_status, to_status, send_step, send_attempt, detail, decided_by,
                                 dag_run_id)
    VALUES (NEW.id, OLD.status, NEW.status, NEW.send_step, NEW.send_attempt,
            nullif(current_setting('finflows.reason', true), ''),
            CASE WHEN NEW.decided_at IS DISTINCT FROM OLD.decided_at THEN NEW.decided_by END,
            nullif(current_setting('finflows.run_id', true), ''));
    RETURN NULL;
END $$;

CREATE TRIGGER batch_guard BEFORE UPDATE OF status, send_step ON pay.batch
    FOR EACH ROW EXECUTE FUNCTION pay.batch_guard();
CREATE TRIGGER batch_moved AFTER UPDATE OF status, send_step, send_attempt ON pay.batch
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.send_step IS DISTINCT FROM NEW.send_step
                       OR OLD.send_attempt IS DISTINCT FROM NEW.send_attempt)
    EXECUTE FUNCTION pay.batch_audit();

-- transfers: an uncertain outcome, and a person's confirmation, are transfer rows too
ALTER TABLE pay.transfer DROP CONSTRAINT transfer_outcome_check;
ALTER TABLE pay.transfer ADD CONSTRAINT transfer_outcome_check
    CHECK (outcome IN ('uploaded', 'already_there', 'failed', 'uncertain', 'confirmed'));
DROP INDEX pay.transfer_delivered_once;
CREATE UNIQUE INDEX transfer_delivered_once ON pay.transfer (batch_id)
    WHERE outcome IN ('uploaded', 'already_there', 'confirmed');

ALTER TABLE pay.transfer_retry DROP CONSTRAINT transfer_retry_status_check;
ALTER TABLE pay.transfer_retry ADD CONSTRAINT transfer_retry_status_check
    CHECK (status IN ('waiting', 'delivered', 'expired', 'gave_up', 'uncertain'));
