"""Airflow DAGs of DAG shard 3: the models whose shard is 3 when MLOPS_DAG_SHARDS > 3, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(3, __file__))
