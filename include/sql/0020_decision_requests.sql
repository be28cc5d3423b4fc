-- Every money decision a person makes is an Airflow Required Action (issue #40).
--
-- * pay.decision_request: which question (an uncertain delivery, a held duplicate, a given-up
--   batch, an attention-list row) is being asked by which run of treasury_decisions, so that one
--   question is asked once at a time; a request past its `until` is asked again by the next run
--   (a run that died with it open never hides it). The answer itself is kept where it always was
--   (pay.batch, pay.payment, pay.transfer_retry, pay.attention); here: which Required Action it
--   came from, who, when and what was chosen.
-- * A given-up batch may be cancelled by a person (before its cutoff; after it the retry DAG
--   cancels it): who, when and why on its retry row, never its maker.

CREATE TABLE pay.decision_request (
    id           bigserial   PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('uncertain', 'held', 'given_up', 'attention')),
    subject      text        NOT NULL,               -- batch id, payment reference or attention id
    bank         text,
    dag_run_id   text        NOT NULL,
    task_id      text        NOT NULL,
    map_index    integer     NOT NULL,
    asked_at     timestamptz NOT NULL DEFAULT now(),
    until        timestamptz NOT NULL,               -- after this the next run asks again
    closed_at    timestamptz,
    outcome      text CHECK (outcome IN ('answered', 'refused', 'decided_elsewhere', 'unanswered')),
    answered_by  text,
    answer       text,
    note         text,
    CHECK ((closed_at IS NULL) = (outcome IS NULL))
);
CREATE UNIQUE INDEX decision_request_open ON pay.decision_request (kind, subject) WHERE closed_at IS NULL;
CREATE INDEX decision_request_run ON pay.decision_request (dag_run_id);

ALTER TABLE pay.transfer_retry
    ADD COLUMN cancelled_by  text,
    ADD COLUMN cancelled_at  timestamptz,
    ADD COLUMN cancel_note   text,
    ADD CONSTRAINT transfer_retry_cancel_whole
        CHECK ((cancelled_by IS NULL) = (cancelled_at IS NULL));

-- neither a re-queue nor a cancel of a given-up batch by the user whose run made it
CREATE FUNCTION pay.transfer_retry_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    maker text;
BEGIN
    SELECT made_by INTO maker FROM pay.batch WHERE id = NEW.batch_id;
    IF maker IS NOT NULL AND (NEW.requeued_by = maker AND NEW.requeued_by IS DISTINCT FROM OLD.requeued_by
                              OR NEW.cancelled_by = maker AND NEW.cancelled_by IS DISTINCT FROM OLD.cancelled_by) THEN
        RAISE EXCEPTION 'batch %: % made it and may not re-queue or cancel it (four eyes)', NEW.batch_id, maker
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER transfer_retry_guard BEFORE UPDATE OF requeued_by, cancelled_by ON pay.transfer_retry
    FOR EACH ROW EXECUTE FUNCTION pay.transfer_retry_guard();
