"""The three PATCH flavours the clients send: JSON merge patch, strategic merge patch and JSON patch.

Enough for what the provider and tests patch (labels, annotations, other metadata). The strategic flavour
merges lists of named items (containers, env) by `name` and understands `$patch: delete` on maps; the
rest of the strategic directives are not implemented.
"""

from __future__ import annotations

import copy

from .state import ApiError


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        current = result.get(key)
        if value is None:
            result.pop(key, None)
        elif _named_list(value) and _named_list(current):
            result[key] = _merge_named(current, value)
        else:
            merged = strategic_merge_patch(current, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _named_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def _merge_named(current: list[dict], patch: list[dict]) -> list[dict]:
    merged = [copy.deepcopy(item) for item in current]
    index = {item["name"]: i for i, item in enumerate(merged)}
    for item in patch:
        if item["name"] in index:
            merged[index[item["name"]]] = strategic_merge_patch(merged[index[item["name"]]], item)
        else:
            merged.append(copy.deepcopy(item))
    return [m for m in merged if m is not None]


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: object, parts: list[str]) -> object:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(target: dict, ops: list[dict]) -> dict:
    """RFC 6902 add / remove / replace / test / copy / move."""
    doc = copy.deepcopy(target)
    for op in ops:
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind in ("copy", "move"):
                src = _pointer(op["from"])
                value = copy.deepcopy(_walk(doc, src))
                if kind == "move":
                    parent = _walk(doc, src[:-1])
                    del parent[int(src[-1]) if isinstance(parent, list) else src[-1]]
                kind, op = "add", {**op, "value": value}
            parent, last = _walk(doc, parts[:-1]), parts[-1] if parts else None
            if kind == "test":
                if _walk(doc, parts) != op["value"]:
                    raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind in ("add", "replace"):
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    if kind == "add":
                        parent.insert(index, copy.deepcopy(op["value"]))
                    else:
                        parent[index] = copy.deepcopy(op["value"])
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = copy.deepcopy(op["value"])
            else:
                raise ApiError(422, "Invalid", f"unknown JSON patch op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, "Invalid", f"the JSON patch {op} does not apply: {exc!r}") from exc
    return doc


def apply(content_type: str, target: dict, body: object) -> dict:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json-patch+json":
        if not isinstance(body, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        return json_patch(target, body)
    if kind == "application/merge-patch+json":
        return merge_patch(target, body)  # type: ignore[return-value]
    if kind == "application/strategic-merge-patch+json":
        return strategic_merge_patch(target, body)  # type: ignore[return-value]
    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                   f"accepted media types include: application/json-patch+json, application/merge-patch+json, "
                   f"application/strategic-merge-patch+json (got {content_type!r})")
