-- Databases for a shared Prefect server and MLflow tracking server (psql -h 127.0.0.1 -U postgres -f ...).
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
