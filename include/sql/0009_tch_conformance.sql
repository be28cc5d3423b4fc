-- Taiwan ACH as the clearing house defines it (include/banking/tch/).
--
-- A payment's transaction code (TXID) is chosen on purpose: the row's own code, else its bank's
-- default_txn_code in banks.yaml; no silent '101'. Rows written before keep the code they had.
ALTER TABLE pay.payment ALTER COLUMN txn_code DROP DEFAULT;
ALTER TABLE pay.payment ALTER COLUMN txn_code DROP NOT NULL;

-- A return line keeps the meaning of its reason code as the clearing house's table gave it, so
-- alerts and the daily report show "04 no such account (無此帳號)", not a bare code; and the
-- original entry it points at (PDATE, PSEQ), by which it was matched.
ALTER TABLE pay.return_line ADD COLUMN return_meaning text;
ALTER TABLE pay.return_line ADD COLUMN original_date date;
ALTER TABLE pay.return_line ADD COLUMN original_seq integer;

-- Payments settled because no return came within the bank's return window (banks whose return
-- files list only the returned items) are recorded in pay.payment_event with that reason.

-- PSEQ identifies an entry within a bank's processing day: sequences run on across a day's batches.
CREATE UNIQUE INDEX payment_day_seq ON pay.payment (bank, value_date, seq) WHERE seq IS NOT NULL;
