"""Who is asking, and which models they may see, through Airflow's own auth manager.

Plugin apps are mounted without Airflow's authentication, so every route here depends on `current_user`:
the JWT comes from `Authorization: Bearer <token>` (what `POST /auth/token` returns) or, for a browser,
from the `_token` cookie the Airflow UI sets after login; the auth manager validates it (signature, expiry,
revocation). No token, a forged, expired or revoked one: 401. A user sees a model when the auth manager
lets them read its training DAG (`<model>__train`).
"""

from __future__ import annotations

from fastapi import Request


class NotAuthenticated(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _auth_manager():
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def token_from(request: Request) -> str | None:
    """An explicit bearer token wins over the session cookie (as in Airflow's own routes)."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN) or None


async def current_user(request: Request):
    """FastAPI dependency: the authenticated Airflow user, or NotAuthenticated (rendered as 401)."""
    from jwt import ExpiredSignatureError, InvalidTokenError

    token = token_from(request)
    if not token:
        # A user an in-tree middleware already authenticated (e.g. the simple auth manager's all-admins
        # mode) counts only with Airflow's trust marker, exactly as in Airflow's own get_user.
        from airflow.api_fastapi.core_api.security import USER_INJECTED_BY_TRUSTED_MIDDLEWARE

        user = getattr(request.state, "user", None)
        if user is not None and getattr(request.state, "user_authenticated_via", None) \
                is USER_INJECTED_BY_TRUSTED_MIDDLEWARE:
            return user
        raise NotAuthenticated("Not authenticated: log in to Airflow, or send 'Authorization: Bearer <token>' "
                               "with a token from POST /auth/token")
    try:
        return await _auth_manager().get_user_from_token(token)
    except ExpiredSignatureError:
        raise NotAuthenticated("Token expired: log in again") from None
    except InvalidTokenError:
        raise NotAuthenticated("Invalid token") from None


def readable_dag_ids(user, dag_ids: set[str]) -> set[str]:
    """The DAGs among `dag_ids` the auth manager lets `user` read."""
    if not dag_ids:
        return set()
    return set(_auth_manager().filter_authorized_dag_ids(dag_ids=set(dag_ids), user=user, method="GET"))


def login_url(next_url: str | None = None) -> str:
    try:
        return _auth_manager().get_url_login(next_url=next_url) if next_url else _auth_manager().get_url_login()
    except Exception:  # noqa: BLE001 - an auth manager without a login page
        return "/"
