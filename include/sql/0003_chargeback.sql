-- Every file delivered to a counterparty, once: a re-run finds it here and uploads nothing.
CREATE TABLE ops.delivery (
    id            bigserial   PRIMARY KEY,
    flow          text        NOT NULL,
    destination   text        NOT NULL,   -- e.g. ftps_visa:/inbox
    file_name     text        NOT NULL,
    source_file   text        NOT NULL,   -- the input it came from (ops.file_control.file_name)
    sha256        char(64)    NOT NULL,
    bytes         bigint      NOT NULL,
    row_count     integer     NOT NULL,
    batch_no      integer     NOT NULL,
    delivered_at  timestamptz NOT NULL DEFAULT now(),
    dag_run_id    text,
    UNIQUE (destination, file_name)
);
CREATE INDEX delivery_source ON ops.delivery (flow, source_file);
