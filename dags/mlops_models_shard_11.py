"""Airflow DAGs of DAG shard 11: the models whose shard is 11 when MLOPS_DAG_SHARDS > 11, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(11, __file__))
