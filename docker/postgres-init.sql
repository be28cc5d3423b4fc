-- The finance database beside Airflow's own; finflows migrations are applied by airflow-init.
CREATE ROLE finflows LOGIN PASSWORD 'finflows';
CREATE DATABASE finance OWNER finflows;
