-- ifs.cash_payment_account (rent_account, paid_on) is dropped (issue #20). The finance data owners'
-- rule: indexes stay unless a measurement shows one unused by the views and reports. No view,
-- report or flow reads ifs.cash_payment by account (none exists: the cash tables are read by
-- file_id, through the primary key), and after a full `make test`, which runs every flow, view and
-- report, pg_stat_user_indexes showed the index never scanned. It was about 60% of PostgreSQL's
-- work in a cash file's load (bench/cashfile.py). Re-create it in a new migration when a report
-- by account arrives.
DROP INDEX IF EXISTS ifs.cash_payment_account;
