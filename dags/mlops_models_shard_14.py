"""Airflow DAGs of DAG shard 14: the models whose shard is 14 when MLOPS_DAG_SHARDS > 14, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(14, __file__))
