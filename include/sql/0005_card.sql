-- card_reconciliation: acquirer card statements in a dimensional model (schema `card`).
-- Facts carry natural keys of their dimensions (date, store id, brand code, product code,
-- capture channel code), so a file is loaded by one COPY straight into the fact table; the
-- dimensions are upserted from the distinct members the reader met, in the same transaction.
-- No foreign keys on the fact table: per-row FK triggers tripled load time in the cash-file
-- benchmark, and the only writer (finflows.card) upserts dimensions before it commits.
CREATE SCHEMA IF NOT EXISTS card;

CREATE TABLE card.dim_date (
    day        date     PRIMARY KEY,
    year       smallint NOT NULL,
    month      smallint NOT NULL,
    day_of_month smallint NOT NULL,
    iso_dow    smallint NOT NULL,
    is_weekend boolean  NOT NULL
);

CREATE TABLE card.dim_store (
    store_id    text        PRIMARY KEY,
    first_seen  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE card.dim_brand (
    brand_code  char(3) PRIMARY KEY,
    name        text    NOT NULL
);
INSERT INTO card.dim_brand VALUES ('001', 'Mastercard'), ('002', 'Visa'), ('007', 'Elo');

CREATE TABLE card.dim_capture_channel (
    code  char(1) PRIMARY KEY,
    name  text    NOT NULL
);
INSERT INTO card.dim_capture_channel VALUES
    ('1', 'manual'), ('2', 'POS'), ('3', 'PDV'), ('4', 'TRN off'), ('5', 'internet'), ('6', 'IVR'),
    ('8', 'undefined'), ('9', 'other');

CREATE TABLE card.dim_product (
    product_type  char(1) NOT NULL,   -- C credit, D debit, V voucher
    product_code  char(3) NOT NULL,
    type_name     text    NOT NULL,
    PRIMARY KEY (product_type, product_code)
);

CREATE TABLE card.fact_transaction (
    file_id                     bigint        NOT NULL,   -- ops.file_control.id
    record_seq                  integer       NOT NULL,
    store_id                    text          NOT NULL,
    host_nsu                    char(12)      NOT NULL,
    txn_date                    date          NOT NULL,
    txn_time                    time          NOT NULL,
    entry_type                  char(1)       NOT NULL,   -- 0 forecast, 1 settlement, 2 early settlement
    entry_date                  date          NOT NULL,
    product_type                char(1)       NOT NULL,
    capture_channel             char(1)       NOT NULL,
    gross                       numeric(13,2) NOT NULL,
    discount                    numeric(13,2) NOT NULL,
    net                         numeric(13,2) NOT NULL,
    card_bin                    char(6)       NOT NULL,   -- PCI DSS: BIN and last four only, never more
    card_last4                  char(4)       NOT NULL,
    instalment_no               smallint      NOT NULL,
    instalments                 smallint      NOT NULL,
    instalment_nsu              char(12)      NOT NULL,
    instalment_gross            numeric(13,2) NOT NULL,
    instalment_discount         numeric(13,2) NOT NULL,
    instalment_net              numeric(13,2) NOT NULL,
    bank                        char(3)       NOT NULL,
    branch                      char(6)       NOT NULL,
    account                     char(11)      NOT NULL,
    auth_code                   text,
    brand                       char(3)       NOT NULL,
    product_code                char(3)       NOT NULL,
    interchange_fee             numeric(13,2) NOT NULL,
    admin_fee                   numeric(13,2) NOT NULL,
    instalment_interchange_fee  numeric(13,2) NOT NULL,
    instalment_admin_fee        numeric(13,2) NOT NULL,
    multi_border_reducer        numeric(13,2) NOT NULL,
    anticipation_fee            numeric(13,2) NOT NULL,
    net_anticipated             numeric(13,2) NOT NULL,
    transaction_type            char(2)       NOT NULL,
    order_code                  text,
    country                     char(3)       NOT NULL,
    sale_establishment          char(9)       NOT NULL,
    payment_establishment       char(9)       NOT NULL,
    payment_cnpj                char(14)      NOT NULL,
    original_due_date           date,
    debit_balance               char(1),
    resend                      char(1),
    origin_nsu                  text,
    receivable_op               text,
    receivable_seq              text,
    receivable_type             char(1),
    receivable_amount           text,
    PRIMARY KEY (file_id, record_seq),
    CHECK (card_bin ~ '^[0-9]{6}$' AND card_last4 ~ '^[0-9]{4}$')
);
CREATE INDEX fact_transaction_instalment ON card.fact_transaction (instalment_nsu);

-- Daily summary per store and brand: the sales of the day (forecast entries, one per instalment).
CREATE VIEW card.v_daily_summary AS
SELECT t.txn_date                        AS day,
       t.store_id,
       b.name                            AS brand,
       count(DISTINCT t.host_nsu)        AS sales,
       count(*)                          AS instalments,
       sum(t.instalment_gross)           AS gross,
       sum(t.instalment_discount)        AS discount,
       sum(t.instalment_net)             AS net
  FROM card.fact_transaction t
  JOIN card.dim_brand b ON b.brand_code = t.brand
 WHERE t.entry_type = '0'
 GROUP BY t.txn_date, t.store_id, b.name;

-- Forecast (entry type 0) against settlement (1 normal, 2 early) per instalment NSU.
CREATE VIEW card.v_instalment_match AS
WITH forecast AS (
    SELECT instalment_nsu, min(store_id) AS store_id, min(brand) AS brand, min(entry_date) AS due_date,
           sum(instalment_net) AS expected_net, count(*) AS records
      FROM card.fact_transaction WHERE entry_type = '0' GROUP BY instalment_nsu
), settled AS (
    SELECT instalment_nsu, min(store_id) AS store_id, min(brand) AS brand, max(entry_date) AS settled_on,
           sum(instalment_net) AS settled_net, count(*) AS records
      FROM card.fact_transaction WHERE entry_type IN ('1', '2') GROUP BY instalment_nsu
)
SELECT coalesce(f.instalment_nsu, s.instalment_nsu) AS instalment_nsu,
       coalesce(f.store_id, s.store_id)             AS store_id,
       coalesce(f.brand, s.brand)                   AS brand,
       f.due_date, s.settled_on, f.expected_net, s.settled_net,
       CASE WHEN f.instalment_nsu IS NULL THEN 'settlement without forecast'
            WHEN s.instalment_nsu IS NULL AND f.due_date < current_date THEN 'overdue'
            WHEN s.instalment_nsu IS NULL THEN 'awaiting settlement'
            WHEN f.expected_net <> s.settled_net THEN 'amount mismatch'
            ELSE 'matched' END                      AS status,
       s.settled_net - f.expected_net               AS difference
  FROM forecast f FULL OUTER JOIN settled s ON s.instalment_nsu = f.instalment_nsu;

-- What needs a person: unmatched settlements, amount mismatches, forecasts past due and unsettled.
CREATE VIEW card.v_instalment_exceptions AS
SELECT * FROM card.v_instalment_match WHERE status NOT IN ('matched', 'awaiting settlement');
