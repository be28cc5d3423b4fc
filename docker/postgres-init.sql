-- The finance database beside Airflow's own; finflows migrations are applied by airflow-init.
-- the password is no word a log could contain: Airflow masks it wherever it appears
CREATE ROLE finflows LOGIN PASSWORD 'fin-compose-4d2a8e61';
CREATE DATABASE finance OWNER finflows;
