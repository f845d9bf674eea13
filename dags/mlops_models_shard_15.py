"""Airflow DAGs of DAG shard 15: the models whose shard is 15 when MLOPS_DAG_SHARDS > 15, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(15, __file__))
