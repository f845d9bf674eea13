"""Airflow DAGs of DAG shard 10: the models whose shard is 10 when MLOPS_DAG_SHARDS > 10, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(10, __file__))
