"""Approvals by role: Airflow's human-in-the-loop requests name the users who may answer, and the API server's
auth manager decides whether the user answering is one of them. A spec's `approval.roles` become entries
`role:<name>` among those users (mlops.spec.approval); an auth manager with `RoleAwareHITL` mixed in lets a
user answer when one of their roles is named that way. Everything else is the wrapped auth manager's.

    [core]
    auth_manager = mlops_airflow.auth.RoleAwareSimpleAuthManager

For FAB: `class RoleAwareFabAuthManager(RoleAwareHITL, FabAuthManager): pass` in a module on the API server's
path, and point `auth_manager` at it.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

from mlops.spec.approval import ROLE_PREFIX


def user_roles(user: Any) -> set[str]:
    """The roles of an auth manager's user: the simple manager's one `role`, FAB's `roles` (objects with a
    name), or none."""
    found: set[str] = set()
    role = getattr(user, "role", None)
    if isinstance(role, str) and role:
        found.add(role)
    for entry in getattr(user, "roles", None) or []:
        name = entry if isinstance(entry, str) else getattr(entry, "name", None)
        if name:
            found.add(str(name))
    return found


class RoleAwareHITL:
    """Mix in before an auth manager class: a HITL request assigned to `role:<name>` may be answered by any
    user holding that role (case-insensitive), besides the users it names."""

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: Any) -> bool:
        if super().is_authorized_hitl_task(assigned_users=assigned_users, user=user):  # type: ignore[misc]
            return True
        wanted = {a[len(ROLE_PREFIX):].lower() for a in assigned_users if a.startswith(ROLE_PREFIX)}
        return bool(wanted & {r.lower() for r in user_roles(user)})


class RoleAwareSimpleAuthManager(RoleAwareHITL, SimpleAuthManager):
    """The simple auth manager (users and roles from `[core] simple_auth_manager_users`), matching roles in
    approval requests."""
