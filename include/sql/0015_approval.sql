-- A second person before money moves (maker-checker). A batch is made with the approval its bank's
-- policy asks for (banks.yaml `approval`):
--
--   required ──► requested ──┬─► approved      (a configured approver, not the run's trigger user)
--                            ├─► rejected      (with the reason; the batch is cancelled)
--                            └─► expired       (no answer by the bank's cutoff less the margin; cancelled)
--   not_required              (approval: none, or a total not above `approval: {above: N}`)
--
-- Nothing leaves for the bank without it: the guard below refuses `sending` for a batch that is
-- neither approved nor not_required, whatever code path asks (a run, a re-run, a cleared task, the
-- retry queue, a person's "resend"). Who answered, when and why are kept on the batch and in
-- pay.batch_event.
ALTER TABLE pay.batch
    ADD COLUMN approval         text NOT NULL DEFAULT 'required'
        CHECK (approval IN ('required', 'requested', 'approved', 'not_required', 'rejected', 'expired')),
    ADD COLUMN approval_request text,        -- the Airflow task instance that asked (run id / map index)
    ADD COLUMN approval_by      text,
    ADD COLUMN approval_at      timestamptz,
    ADD COLUMN approval_note    text;

-- batches made before approvals existed went out under the old rules
UPDATE pay.batch SET approval = 'not_required', approval_note = 'made before approvals existed';

CREATE FUNCTION pay.batch_approval_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'sending' AND OLD.status IS DISTINCT FROM 'sending'
       AND NEW.approval NOT IN ('approved', 'not_required') THEN
        RAISE EXCEPTION 'batch %: approval is %, nothing is sent to a bank without approval', OLD.file_name, NEW.approval
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.approval IS DISTINCT FROM NEW.approval AND (OLD.approval, NEW.approval) NOT IN (
        ('required', 'requested'), ('required', 'not_required'), ('requested', 'requested'),
        ('requested', 'approved'), ('requested', 'rejected'), ('requested', 'expired'),
        ('required', 'expired'), ('required', 'rejected')) THEN
        RAISE EXCEPTION 'batch %: approval % → % is not an allowed change', OLD.file_name, OLD.approval, NEW.approval
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.approval = 'approved' AND OLD.approval IS DISTINCT FROM 'approved'
       AND (NEW.approval_by IS NULL OR NEW.approval_at IS NULL) THEN
        RAISE EXCEPTION 'batch %: an approval names who gave it and when', OLD.file_name
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER batch_approval_guard BEFORE UPDATE OF status, approval ON pay.batch
    FOR EACH ROW EXECUTE FUNCTION pay.batch_approval_guard();

CREATE FUNCTION pay.batch_approval_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pay.batch_event (batch_id, from_status, to_status, detail, decided_by, dag_run_id)
    VALUES (NEW.id, OLD.status, NEW.status,
            'approval ' || NEW.approval || coalesce(': ' || NEW.approval_note, ''),
            NEW.approval_by, nullif(current_setting('finflows.run_id', true), ''));
    RETURN NULL;
END $$;

CREATE TRIGGER batch_approval_moved AFTER UPDATE OF approval ON pay.batch
    FOR EACH ROW WHEN (OLD.approval IS DISTINCT FROM NEW.approval)
    EXECUTE FUNCTION pay.batch_approval_audit();

CREATE INDEX batch_awaiting_approval ON pay.batch (bank) WHERE approval IN ('required', 'requested');

-- a rejected or expired batch's payments wait for the next business day after its processing date
ALTER TABLE pay.payment ADD COLUMN not_before date;
