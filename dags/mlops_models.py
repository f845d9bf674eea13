"""Airflow DAGs for every model spec in include/models (one `<model>__train` DAG each), and maintenance.

Only the factory is called here: parsing reads the YAML specs and imports nothing heavy.
"""

from mlops_airflow.builders.factory import build_dags

globals().update(build_dags())
