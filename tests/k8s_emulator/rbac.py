"""What each API request needs in RBAC terms: (apiGroup, resource[/subresource], verb), as the API server's
authorizer sees it. The server records one per request (`ApiServer.authorized`), so a test can compare the
permissions a piece of code really used with those a Role grants."""

from __future__ import annotations

import re

_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?")
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def attributes(method: str, path: str, watch: bool) -> tuple[str, str, str] | None:
    """None for discovery and non-resource paths (/version, /api, /apis)."""
    m = _PATH.match(path)
    if m is None:
        return None
    group = m["group"] or ""
    resource, name, sub = m["resource"], m["name"], m["sub"]
    if sub:
        resource = f"{resource}/{sub}"
    if sub in ("proxy", "exec", "log", "status", "scale") or name is not None:
        verb = "get" if method == "GET" else _VERBS.get(method, method.lower())
    else:
        verb = ("watch" if watch else "list") if method == "GET" else _VERBS.get(method, method.lower())
        if method == "DELETE":
            verb = "deletecollection"
    return group, resource, verb


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) a Role's rules grant (no wildcards: they are refused elsewhere)."""
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
