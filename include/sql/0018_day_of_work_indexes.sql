-- A day's work must not cost what the whole history costs (bench/history.py measures each query
-- at 0, 1 and 3 years): every query of the day finds its rows by the time or the state it asks
-- for, never by reading every payment, event, return line or file ever recorded. IF NOT EXISTS: on a
-- database with years of history, build them first with CREATE INDEX CONCURRENTLY under these names
-- (no lock on the flows); this migration then finds them.
--
-- finance_daily_report: payments settled by their return window that day; the day's return files
-- and their lines; the day's batches, approvals and transfers.
CREATE INDEX IF NOT EXISTS payment_event_settled_at ON pay.payment_event (at) WHERE to_status = 'settled';
CREATE INDEX IF NOT EXISTS return_line_file ON pay.return_line (file_id);
CREATE INDEX IF NOT EXISTS file_control_started_at ON ops.file_control (started_at);
CREATE INDEX IF NOT EXISTS batch_uploaded_at ON pay.batch (uploaded_at);
CREATE INDEX IF NOT EXISTS batch_created_at ON pay.batch (created_at);
CREATE INDEX IF NOT EXISTS batch_approval_at ON pay.batch (approval_at) WHERE approval_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS transfer_finished_at ON pay.transfer (finished_at);
-- bank_reconciliation's settle-unreturned (every 30 minutes, per bank): payments still out with the bank
CREATE INDEX IF NOT EXISTS payment_uploaded ON pay.payment (bank, value_date) WHERE status = 'uploaded';
-- batches a person or a retry must still act on (uncertain, queued, half-sent): the report and the monitor
CREATE INDEX IF NOT EXISTS batch_unsettled ON pay.batch (status) WHERE status IN ('batched', 'sending', 'queued', 'uncertain');
