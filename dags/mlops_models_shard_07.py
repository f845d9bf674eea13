"""Airflow DAGs of DAG shard 7: the models whose shard is 7 when MLOPS_DAG_SHARDS > 7, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(7, __file__))
