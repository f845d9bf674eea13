"""Airflow DAGs of DAG shard 9: the models whose shard is 9 when MLOPS_DAG_SHARDS > 9, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(9, __file__))
