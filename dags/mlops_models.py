"""Airflow DAGs of DAG shard 0: the models whose shard is 0 (every model with the default one shard),
`mlops__maintenance`, and the spec files that define no model. See mlops_airflow.sharding.

Only the factory is called here: parsing reads the YAML specs and imports nothing heavy.
"""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(0, __file__))
