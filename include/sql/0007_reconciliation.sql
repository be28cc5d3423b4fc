-- bank_reconciliation: what each bank return file said about each payment. The file itself is
-- identified in ops.file_control (flow bank_reconciliation, name "<bank>/<file>", sha256).
CREATE TABLE pay.return_line (
    id             bigserial   PRIMARY KEY,
    file_id        bigint      NOT NULL REFERENCES ops.file_control (id),
    bank           text        NOT NULL,
    line           integer     NOT NULL,
    reference      text,                       -- our payment reference as the bank returned it
    payment_id     bigint      REFERENCES pay.payment (id),
    batch_id       bigint      REFERENCES pay.batch (id),
    outcome        text        NOT NULL
                   CHECK (outcome IN ('settled', 'returned', 'unmatched', 'mismatch', 'duplicate')),
    return_reason  text,
    amount         numeric(12, 0),
    detail         text,
    UNIQUE (file_id, line)
);
CREATE INDEX return_line_payment ON pay.return_line (payment_id);
CREATE INDEX return_line_batch ON pay.return_line (batch_id);

-- an uploaded batch still unreconciled at the end of its business day is alerted once
ALTER TABLE pay.batch ADD COLUMN unreconciled_alerted_at timestamptz;
