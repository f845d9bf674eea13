"""Airflow DAGs of DAG shard 2: the models whose shard is 2 when MLOPS_DAG_SHARDS > 2, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(2, __file__))
