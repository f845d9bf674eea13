"""Admission for created pods: schema validation with kubernetes_validate (strict, Kubernetes 1.31) plus
the few semantic checks the schema cannot express, then the defaults the API server fills in.

A typo in a pod spec (an unknown field, a missing image) must fail at create time with 422, as it would
on a real cluster, instead of being silently ignored by the emulator.
"""

from __future__ import annotations

import re

import kubernetes_validate

from .state import ApiError

K8S_VERSION = "1.31.0"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def invalid(kind: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 with the API server's message layout: `Pod "x" is invalid: field: message`."""
    text = "; ".join(f"{field}: {message}" if field else message for field, message in causes)
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {text}', {
        "name": name, "kind": kind.lower() + "s",
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field} for field, message in causes],
    })


def _field_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_pod(pod: dict) -> None:
    meta = pod.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or ""
    try:
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise invalid("Pod", name, [(_field_path(exc.path), exc.message)]) from None
    causes: list[tuple[str, str]] = []
    if not meta.get("name") and not meta.get("generateName"):
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    full_name = meta.get("name") or (meta.get("generateName", "") + "abcde")
    if full_name and (len(full_name) > 253 or not _DNS_SUBDOMAIN.match(full_name)):
        causes.append(("metadata.name", f'Invalid value: "{full_name}": a lowercase RFC 1123 subdomain must '
                       "consist of lower case alphanumeric characters, '-' or '.'"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate((pod.get("spec") or {}).get(group) or []):
            cname = container.get("name", "")
            if not _DNS_LABEL.match(cname) or len(cname) > 63:
                causes.append((f"spec.{group}[{i}].name", f'Invalid value: "{cname}": must be a DNS label'))
            if cname in seen:
                causes.append((f"spec.{group}[{i}].name", f'Duplicate value: "{cname}"'))
            seen.add(cname)
            if not container.get("image"):
                causes.append((f"spec.{group}[{i}].image", "Required value"))
    if not (pod.get("spec") or {}).get("containers"):
        causes.append(("spec.containers", "Required value"))
    if causes:
        raise invalid("Pod", name, causes)


def default_pod(pod: dict) -> dict:
    """Fill in what the API server defaults, so reads look like a real cluster's pods."""
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    for container in spec.get("initContainers", []) + spec["containers"]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        tag = container["image"].rsplit("/", 1)[-1]
        container.setdefault("imagePullPolicy",
                             "Always" if ":" not in tag or tag.endswith(":latest") else "IfNotPresent")
        container.setdefault("resources", {})
        limits = container["resources"].get("limits") or {}
        if limits:  # requests default to limits
            container["resources"]["requests"] = {**limits, **(container["resources"].get("requests") or {})}
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec["containers"])}
    return pod


def _qos_class(containers: list[dict]) -> str:
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        {k: str(v) for k, v in (r.get("limits") or {}).items() if k in ("cpu", "memory")}
        == {k: str(v) for k, v in (r.get("requests") or {}).items() if k in ("cpu", "memory")}
        and {"cpu", "memory"} <= set(r.get("limits") or {})
        for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"
