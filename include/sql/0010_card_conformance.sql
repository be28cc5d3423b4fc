-- Card statements as acquirers send them.
--
-- receivable_amount [379:390] is 11 digits with 2 implied decimals (blank when there is no
-- receivable operation): a number, summed in the daily view, not text.
ALTER TABLE card.fact_transaction ALTER COLUMN receivable_amount TYPE numeric(13, 2)
    USING (nullif(btrim(receivable_amount), '')::numeric / 100);

CREATE OR REPLACE VIEW card.v_daily_summary AS
SELECT t.txn_date                        AS day,
       t.store_id,
       b.name                            AS brand,
       count(DISTINCT t.host_nsu)        AS sales,
       count(*)                          AS instalments,
       sum(t.instalment_gross)           AS gross,
       sum(t.instalment_discount)        AS discount,
       sum(t.instalment_net)             AS net,
       sum(t.receivable_amount)          AS receivable
  FROM card.fact_transaction t
  JOIN card.dim_brand b ON b.brand_code = t.brand
 WHERE t.entry_type = '0'
 GROUP BY t.txn_date, t.store_id, b.name;
