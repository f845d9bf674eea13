"""Airflow DAGs of DAG shard 5: the models whose shard is 5 when MLOPS_DAG_SHARDS > 5, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(5, __file__))
