-- The mmdm metadata store lives beside Airflow's own database, in its own database and role.
CREATE ROLE mmdm LOGIN PASSWORD 'mmdm';
CREATE DATABASE mmdm OWNER mmdm;
