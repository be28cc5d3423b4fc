-- The finance monitor's "test connection" of a bank: who asked, when, and what came of it. One per
-- bank per interval (FINFLOWS_TEST_CONNECTION_INTERVAL seconds): a button pressed in a loop cannot
-- use up the sessions a bank allows us.
CREATE TABLE pay.connection_test (
    id          bigserial   PRIMARY KEY,
    bank        text        NOT NULL,
    asked_by    text        NOT NULL,
    ok          boolean     NOT NULL,
    latency_ms  integer,
    error       text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connection_test_bank_at ON pay.connection_test (bank, at DESC);
