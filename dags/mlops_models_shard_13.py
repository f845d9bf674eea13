"""Airflow DAGs of DAG shard 13: the models whose shard is 13 when MLOPS_DAG_SHARDS > 13, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(13, __file__))
