"""Label and field selectors with the API server's syntax, so list calls filter as a real cluster does.

Label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, comma-joined (AND).
Field selectors: `path=value`, `path==value`, `path!=value` over a fixed set of fields per kind; an
unsupported field is an error, as it is on a real server (a typo must not silently match everything).
"""

from __future__ import annotations

import re

from .state import ApiError

_SET_TERM = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)\s*$")

# Fields each kind can be selected on (what the real API server accepts for core/v1 pods and events).
POD_FIELDS = {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
              "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
              "status.nominatedNodeName"}
EVENT_FIELDS = {"metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
                "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
                "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent",
                "source", "type"}
SECRET_FIELDS = {"metadata.name", "metadata.namespace", "type"}


def _bad(selector: str, why: str) -> ApiError:
    return ApiError(400, "BadRequest", f'unable to parse requirement: {why} in selector "{selector}"')


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside a `(...)` value set."""
    terms, depth, current = [], 0, []
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def parse_labels(selector: str | None) -> list[tuple[str, str, set[str]]]:
    """Parse into (key, op, values) with op one of =, !=, in, notin, exists, !exists."""
    reqs = []
    for term in _split_terms(selector or ""):
        if m := _SET_TERM.match(term):
            values = {v.strip() for v in m["values"].split(",") if v.strip()}
            reqs.append((m["key"], m["op"], values))
        elif m := _EQ_TERM.match(term):
            reqs.append((m["key"], "!=" if m["op"] == "!=" else "=", {m["value"]}))
        elif m := _EXISTS_TERM.match(term):
            reqs.append((m["key"], "!exists" if m["neg"] else "exists", set()))
        else:
            raise _bad(selector or "", f"cannot parse {term.strip()!r}")
    return reqs


def labels_match(reqs: list[tuple[str, str, set[str]]], labels: dict | None) -> bool:
    labels = labels or {}
    for key, op, values in reqs:
        present, value = key in labels, labels.get(key)
        ok = {"=": present and value in values, "in": present and value in values,
              "!=": not present or value not in values, "notin": not present or value not in values,
              "exists": present, "!exists": not present}[op]
        if not ok:
            return False
    return True


def parse_fields(selector: str | None, allowed: set[str]) -> list[tuple[str, str, str]]:
    reqs = []
    for term in _split_terms(selector or ""):
        m = _EQ_TERM.match(term) or re.match(r"^\s*(?P<key>[^\s!=]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*?)\s*$", term)
        if not m:
            raise _bad(selector or "", f"cannot parse {term.strip()!r}")
        if m["key"] not in allowed:
            raise ApiError(400, "BadRequest", f'"{m["key"]}" is not a known field selector: only '
                           f'"{", ".join(sorted(allowed))}"')
        reqs.append((m["key"], "!=" if m["op"] == "!=" else "=", m["value"]))
    return reqs


def field_value(obj: dict, path: str) -> str:
    """The field as the API server compares it: a string, empty when unset."""
    if path == "source":  # events select on the source component
        return str((obj.get("source") or {}).get("component", ""))
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def fields_match(reqs: list[tuple[str, str, str]], obj: dict) -> bool:
    return all((field_value(obj, path) == value) == (op == "=") for path, op, value in reqs)
