"""Connections to the services the tasks talk to: the MLflow tracking server and Airflow's own REST API."""
