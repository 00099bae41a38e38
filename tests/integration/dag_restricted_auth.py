"""
Airflow's simple auth manager with per-user DAG grants, for the deployments of the integration tests.

The simple auth manager grants by role only; a user named in ``FGS_TEST_DAG_GRANTS`` (JSON, user name to
the DAG ids they may use) is refused every other DAG, as a deployment's real auth manager (FAB, Keycloak)
would restrict them. Copied into the deployment's ``$AIRFLOW_HOME/config`` (on Airflow's ``sys.path``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

GRANTS_ENV = "FGS_TEST_DAG_GRANTS"


class DagRestrictedSimpleAuthManager(SimpleAuthManager):
    """The simple auth manager, refusing a granted user every DAG outside their grant."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        granted = json.loads(os.environ.get(GRANTS_ENV) or "{}").get(user.get_name())
        dag_id = getattr(details, "id", None)
        # No DAG named: a listing, which Airflow then filters DAG by DAG (get_authorized_dag_ids).
        if granted is not None and dag_id is not None and dag_id not in granted:
            return False
        allowed: bool = super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
        return allowed
