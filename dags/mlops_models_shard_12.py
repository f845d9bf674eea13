"""Airflow DAGs of DAG shard 12: the models whose shard is 12 when MLOPS_DAG_SHARDS > 12, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(12, __file__))
