"""Scheduling decisions: which node a pod fits on, and the scheduler's message when none does.

Filters run in the default scheduler's plugin order (TaintToleration, NodeAffinity, NodeResourcesFit) and
each node is rejected by the first filter it fails, which is what makes the real scheduler's summary
("0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match ...") come out the same.
Only resources a node lists as allocatable are counted, except extended resources (names with a `/`,
such as nvidia.com/gpu), which a node without them has none of.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def quantity(value: object) -> Decimal:
    """A Kubernetes resource quantity ("500m", "2Gi", 1) as a number."""
    m = _QUANTITY.match(str(value).strip())
    if not m:
        raise ValueError(f"invalid quantity {value!r}")
    return Decimal(m[1]) * Decimal(_SUFFIXES[m[2] or ""])


def pod_requests(pod: dict) -> Counter:
    """Resources a pod asks for: the sum over its containers, or the largest init container if larger."""
    def of(container: dict) -> Counter:
        res = container.get("resources") or {}
        declared = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return Counter({k: quantity(v) for k, v in declared.items()})

    spec = pod.get("spec") or {}
    total = sum((of(c) for c in spec.get("containers") or []), Counter())
    for init in spec.get("initContainers") or []:
        for key, value in of(init).items():
            total[key] = max(total[key], value)
    return total


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _expression_holds(expr: dict, labels: dict) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels:
        try:
            a, b = int(labels[key]), int(values[0])
        except (ValueError, IndexError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def matches_affinity(pod: dict, labels: dict) -> bool:
    spec = pod.get("spec") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(all(_expression_holds(e, labels) for e in term.get("matchExpressions") or []) for term in terms)


def rejection(pod: dict, node: dict, used: Counter) -> str | None:
    """Why `pod` cannot go on `node` given the resources `used` there, or None when it fits."""
    spec_node = node.get("spec") or {}
    if spec_node.get("unschedulable"):
        return "node(s) were unschedulable"
    untolerated = [t for t in spec_node.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")
                   and not tolerates((pod.get("spec") or {}).get("tolerations") or [], t)]
    if untolerated:
        t = untolerated[0]
        return f"node(s) had untolerated taint {{{t['key']}: {t.get('value', '')}}}"
    if not matches_affinity(pod, node["metadata"].get("labels") or {}):
        return "node(s) didn't match Pod's node affinity/selector"
    allocatable = {k: quantity(v) for k, v in ((node.get("status") or {}).get("allocatable") or {}).items()}
    for resource, amount in sorted(pod_requests(pod).items()):
        if amount <= 0 or (resource not in allocatable and "/" not in resource):
            continue
        if used[resource] + amount > allocatable.get(resource, Decimal(0)):
            return f"Insufficient {resource}"
    return None


def choose_node(pod: dict, nodes: list[dict], used: dict[str, Counter]) -> tuple[str | None, str]:
    """The first fitting node (in the order given), or None and the scheduler's FailedScheduling message."""
    reasons: Counter = Counter()
    for node in nodes:
        name = node["metadata"]["name"]
        why = rejection(pod, node, used.get(name, Counter()))
        if why is None:
            return name, ""
        reasons[why] += 1
    summary = ", ".join(sorted(f"{count} {why}" for why, count in reasons.items()))
    message = f"0/{len(nodes)} nodes are available" + (f": {summary}." if summary else ".")
    return None, message
