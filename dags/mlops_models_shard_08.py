"""Airflow DAGs of DAG shard 8: the models whose shard is 8 when MLOPS_DAG_SHARDS > 8, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(8, __file__))
