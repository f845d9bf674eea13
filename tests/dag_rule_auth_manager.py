"""A test auth manager: the simple auth manager, except that DAG access follows a rule the test sets.

`MLOPS_TEST_DAG_ACCESS` is JSON mapping a user name to the DAG ids that user may see; users it does not name
keep the simple auth manager's rules (every role may read every DAG). Configure with
`AIRFLOW__CORE__AUTH_MANAGER=dag_rule_auth_manager.DagRuleAuthManager` and tests/ on PYTHONPATH."""

from __future__ import annotations

import json
import os

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class DagRuleAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        allowed = json.loads(os.environ.get("MLOPS_TEST_DAG_ACCESS", "{}")).get(user.get_name())
        if allowed is not None and (details is None or details.id not in allowed):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
