-- Duplicate-payment guard: a pending payment to the same payee bank, account and amount as another
-- payment (pending, batched, uploaded or settled; any of our banks) due within the window is held,
-- not batched, until a person releases it (it is batched as usual, never held again) or cancels it
-- (failed). Status stays pending while it is held; the hold and the decision are kept here and in
-- pay.payment_event.
ALTER TABLE pay.payment
    ADD COLUMN held_reason      text,
    ADD COLUMN held_at          timestamptz,
    ADD COLUMN hold_decision    text CHECK (hold_decision IN ('release', 'cancel')),
    ADD COLUMN hold_decided_by  text,
    ADD COLUMN hold_decided_at  timestamptz,
    ADD CONSTRAINT payment_hold_decision_complete
        CHECK ((hold_decision IS NULL) = (hold_decided_by IS NULL) AND (hold_decision IS NULL) = (hold_decided_at IS NULL)),
    ADD CONSTRAINT payment_hold_decided_only_if_held CHECK (hold_decision IS NULL OR held_reason IS NOT NULL);

CREATE INDEX payment_payee_amount ON pay.payment (payee_bank, payee_account, amount);
CREATE INDEX payment_held ON pay.payment (bank) WHERE held_reason IS NOT NULL AND hold_decision IS NULL;
