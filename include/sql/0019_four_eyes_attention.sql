-- Four eyes on every money decision, no payment out of sight (issue #38).
--
-- * The maker of a batch is the Airflow user who triggered the run that made it (NULL: the
--   scheduler, which is nobody). The user whose run held a payment as a possible duplicate is kept
--   the same way. Nobody approves, decides or releases what they made: the database refuses it,
--   whichever code path (or psql session) asks.
-- * Approval is never lowered: `required` may only be asked (`requested`), answered, or expire;
--   the bank's policy decides `not_required` when the batch is made (INSERT), never an UPDATE.
--   A live request is never taken over by another asker.
-- * A decision on an uncertain delivery belongs to that uncertainty: entering `uncertain` clears
--   the previous decision (it stays in pay.batch_event) and leaving it needs one made since.
-- * The duplicate guard compares accounts as the clearing house's layout writes them: 16 digits,
--   zero-padded (`123` and `0000000000000123` are one account on the wire).
-- * pay.attention: what the money invariants found (finflows.flows.banking.invariants), shown in
--   the finance monitor and the daily report until a person resolves each row.

ALTER TABLE pay.batch
    ADD COLUMN made_by      text,          -- the triggering user of the run that made it; NULL: scheduled
    ADD COLUMN uncertain_at timestamptz;   -- when it last became uncertain
ALTER TABLE pay.payment
    ADD COLUMN held_by      text;          -- the triggering user of the run that held it; NULL: scheduled

ALTER TABLE pay.transfer_retry
    ADD COLUMN requeued_by   text,
    ADD COLUMN requeued_at   timestamptz,
    ADD COLUMN requeue_note  text;

-- an uncertain delivery may also come from the write-once send record: a batch the database
-- thinks unsent whose payments the archive record names as sent (after a restore)
CREATE OR REPLACE FUNCTION pay.batch_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status AND (OLD.status, NEW.status) NOT IN (
        ('batched', 'sending'), ('queued', 'sending'),
        ('sending', 'uploaded'), ('sending', 'queued'), ('sending', 'uncertain'), ('sending', 'cancelled'),
        ('uncertain', 'uploaded'), ('uncertain', 'queued'),
        ('batched', 'uncertain'), ('queued', 'uncertain'),
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
    IF NEW.status = 'uncertain' AND OLD.status IS DISTINCT FROM 'uncertain' THEN
        IF NEW.uncertain_reason IS NULL OR NEW.uncertain_reason = '' THEN
            RAISE EXCEPTION 'batch %: an uncertain delivery says what is known', OLD.file_name
                USING ERRCODE = 'check_violation';
        END IF;
        -- a new uncertainty: an earlier decision (kept in pay.batch_event) does not answer it
        NEW.uncertain_at := clock_timestamp();
        NEW.decision := NULL;
        NEW.decided_by := NULL;
        NEW.decided_at := NULL;
        NEW.decision_note := NULL;
    END IF;
    IF OLD.status = 'uncertain' AND NEW.status <> 'uncertain' THEN
        IF NEW.decided_by IS NULL OR NEW.decided_at IS NULL OR NEW.decided_at < OLD.uncertain_at THEN
            RAISE EXCEPTION 'batch %: an uncertain delivery leaves that state only by a decision recorded since it became uncertain',
                OLD.file_name USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.decided_by = OLD.made_by THEN
            RAISE EXCEPTION 'batch %: % made this batch and may not decide its delivery (four eyes)',
                OLD.file_name, OLD.made_by USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER batch_guard ON pay.batch;
CREATE TRIGGER batch_guard BEFORE UPDATE OF status, send_step, decision, decided_by, decided_at ON pay.batch
    FOR EACH ROW EXECUTE FUNCTION pay.batch_guard();

-- uncertain batches already recorded: they became uncertain no later than their last event
UPDATE pay.batch b SET uncertain_at = coalesce(
        (SELECT max(e.at) FROM pay.batch_event e WHERE e.batch_id = b.id AND e.to_status = 'uncertain'), now())
    WHERE b.status = 'uncertain';

CREATE OR REPLACE FUNCTION pay.batch_approval_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'sending' AND OLD.status IS DISTINCT FROM 'sending'
       AND NEW.approval NOT IN ('approved', 'not_required') THEN
        RAISE EXCEPTION 'batch %: approval is %, nothing is sent to a bank without approval', OLD.file_name, NEW.approval
            USING ERRCODE = 'check_violation';
    END IF;
    -- never lowered: not_required is the bank's policy at INSERT, never an UPDATE
    IF OLD.approval IS DISTINCT FROM NEW.approval AND (OLD.approval, NEW.approval) NOT IN (
        ('required', 'requested'), ('requested', 'requested'),
        ('requested', 'approved'), ('requested', 'rejected'), ('requested', 'expired'),
        ('required', 'expired'), ('required', 'rejected')) THEN
        RAISE EXCEPTION 'batch %: approval % → % is not an allowed change', OLD.file_name, OLD.approval, NEW.approval
            USING ERRCODE = 'check_violation';
    END IF;
    -- a live request is the asker's: another run may not take it over
    IF OLD.approval = 'requested' AND NEW.approval = 'requested'
       AND NEW.approval_request IS DISTINCT FROM OLD.approval_request THEN
        RAISE EXCEPTION 'batch %: approval was requested by %; another request may not take it over',
            OLD.file_name, OLD.approval_request USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.approval = 'approved' AND OLD.approval IS DISTINCT FROM 'approved' THEN
        IF NEW.approval_by IS NULL OR NEW.approval_at IS NULL THEN
            RAISE EXCEPTION 'batch %: an approval names who gave it and when', OLD.file_name
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.approval_by = OLD.made_by THEN
            RAISE EXCEPTION 'batch %: % made this batch and may not approve it (four eyes)', OLD.file_name, OLD.made_by
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.approval = 'rejected' AND OLD.approval IS DISTINCT FROM 'rejected' AND NEW.approval_by = OLD.made_by THEN
        RAISE EXCEPTION 'batch %: % made this batch and may not decide its approval (four eyes)', OLD.file_name, OLD.made_by
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER batch_approval_guard ON pay.batch;
CREATE TRIGGER batch_approval_guard BEFORE UPDATE OF status, approval, approval_by, approval_request ON pay.batch
    FOR EACH ROW EXECUTE FUNCTION pay.batch_approval_guard();

-- a held payment is released or cancelled by someone other than the user whose run held it
CREATE FUNCTION pay.payment_hold_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.hold_decided_by IS NOT NULL AND NEW.hold_decided_by = OLD.held_by THEN
        RAISE EXCEPTION 'payment %: % held it (their run did) and may not decide it (four eyes)', OLD.reference, OLD.held_by
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER payment_hold_guard BEFORE UPDATE OF hold_decision, hold_decided_by ON pay.payment
    FOR EACH ROW WHEN (OLD.hold_decision IS DISTINCT FROM NEW.hold_decision) EXECUTE FUNCTION pay.payment_hold_guard();

-- one account on the wire, one key: the clearing house's 16-digit zero-padded form
CREATE FUNCTION pay.wire_account(account text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lpad(account, 16, '0')
$$;
DROP INDEX pay.payment_payee_amount;
CREATE INDEX payment_payee_amount ON pay.payment (payee_bank, pay.wire_account(payee_account), amount);

-- What the money invariants found and a person must see, until a person resolves it.
CREATE TABLE pay.attention (
    id           bigserial   PRIMARY KEY,
    kind         text        NOT NULL,              -- the invariant's name (finflows.flows.banking.invariants)
    subject      text        NOT NULL,              -- what it is about: "batch 12", "payment P-1", "record …"
    bank         text,
    batch_id     bigint,                            -- no foreign key: a restore may have lost the batch
    what         text        NOT NULL,              -- what was found (references and amounts only)
    next_step    text        NOT NULL,              -- who does what next
    deadline     timestamptz,                       -- by when, where one applies
    raised_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(), -- the last check that still found it
    cleared_at   timestamptz,                       -- the first check that no longer found it
    resolved_at  timestamptz,
    resolved_by  text,
    resolution   text,
    CHECK ((resolved_at IS NULL) = (resolved_by IS NULL) AND (resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX attention_open ON pay.attention (kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX attention_unresolved ON pay.attention (raised_at) WHERE resolved_at IS NULL;
