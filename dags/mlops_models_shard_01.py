"""Airflow DAGs of DAG shard 1: the models whose shard is 1 when MLOPS_DAG_SHARDS > 1, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(1, __file__))
