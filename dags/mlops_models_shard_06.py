"""Airflow DAGs of DAG shard 6: the models whose shard is 6 when MLOPS_DAG_SHARDS > 6, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(6, __file__))
