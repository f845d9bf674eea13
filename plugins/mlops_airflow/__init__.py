"""The Airflow layer: turns the core's decisions into Airflow tasks and DAGs, and nothing more."""
