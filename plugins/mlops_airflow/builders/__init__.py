"""DAG builders: the train, score, monitor and rollback DAGs of each spec, the maintenance DAG, and the
stand-in DAG of a broken spec."""
