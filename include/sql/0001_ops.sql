-- Shared operations schema: one control table for every file any flow reads or writes,
-- and an append-only audit of what was decided about each file.
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE ops.file_control (
    id            bigserial PRIMARY KEY,
    flow          text        NOT NULL,
    file_name     text        NOT NULL,
    sha256        char(64)    NOT NULL,
    status        text        NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'ERROR')),
    source_uri    text,
    line_count    integer,
    row_count     integer,
    total_amount  numeric(18, 2),
    error         text,
    dag_run_id    text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    UNIQUE (flow, file_name)
);
COMMENT ON TABLE ops.file_control IS
    'One row per (flow, file name): identity by name + sha256; a re-run over the same file changes nothing.';

CREATE TABLE ops.file_event (
    id          bigserial PRIMARY KEY,
    flow        text        NOT NULL,
    file_name   text        NOT NULL,
    sha256      char(64),
    event       text        NOT NULL,   -- e.g. IMPORTED, DUPLICATE, QUARANTINED, CONFLICT
    detail      text,
    dag_run_id  text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX file_event_flow_file ON ops.file_event (flow, file_name);
