-- The example flow's table (examples/inbox_flow): one row per fee line, keyed by file and line.
CREATE SCHEMA IF NOT EXISTS example;
CREATE TABLE IF NOT EXISTS example.bank_fee (
    file_id    bigint  NOT NULL REFERENCES ops.file_control (id),
    line_no    integer NOT NULL,
    account    text    NOT NULL,
    fee_code   text    NOT NULL,
    amount     numeric(12, 2) NOT NULL,
    charged_on date    NOT NULL,
    PRIMARY KEY (file_id, line_no)
);
