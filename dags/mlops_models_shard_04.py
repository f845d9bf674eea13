"""Airflow DAGs of DAG shard 4: the models whose shard is 4 when MLOPS_DAG_SHARDS > 4, else none.
See mlops_airflow.sharding."""

from mlops_airflow.sharding import build_shard

globals().update(build_shard(4, __file__))
