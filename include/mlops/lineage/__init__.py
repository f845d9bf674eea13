"""Lineage: which data and code made a model version, who let it through and where it served.

Two faces of the same facts. `datasets` names what the platform's tasks read and write the way OpenLineage
does (namespace + name) and gathers the facts the Airflow layer turns into OpenLineage facets
(mlops_airflow.lineage). `record` answers "what made version N" from the platform's own records (MLflow tags,
the validation result, the audit, approval and rollout logs), so it works with lineage events turned off;
`python -m mlops.lineage <model> <version>` prints it.
"""
