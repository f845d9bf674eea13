"""The JSON Schema of KServe's InferenceService (serving.kserve.io/v1beta1), generated from the KServe SDK's
API models, for the emulator's admission and the manifest tests (tests/data/crds/).

The CRD's YAML is not on PyPI, but the SDK's wheel carries a generated model per API type
(`kserve/models/v1beta1_*.py`: `openapi_types`, `attribute_map`, and a "must not be `None`" check per
required field). This reads them from the wheel without importing it (the SDK's dependencies are not
installed here), follows every type reachable from V1beta1InferenceService, and resolves the Kubernetes
types (V1Container, V1Toleration, ...) to kubernetes-validate's own definitions of the same Kubernetes
release. Unknown fields are refused (additionalProperties: false), as a strict API server does.

    pip download kserve==0.21.0 --no-deps -d /tmp/kserve
    .venv/bin/python -m tools.kserve_schema /tmp/kserve/kserve-0.21.0-py3-none-any.whl \
        > tests/data/crds/inferenceservice-v1beta1.json
    .venv/bin/python -m tools.kserve_schema ... --type V1alpha1ClusterServingRuntime \
        > tests/data/crds/clusterservingruntime-v1alpha1.json        (and V1alpha1ClusterStorageContainer)
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

K8S_VERSION = "1.37.0"  # the newest release kubernetes-validate has: the SDK uses recent PodSpec fields
KINDS = {  # the SDK's root type -> (apiVersion, kind)
    "V1beta1InferenceService": ("serving.kserve.io/v1beta1", "InferenceService"),
    "V1alpha1ClusterServingRuntime": ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"),
    "V1alpha1ClusterStorageContainer": ("serving.kserve.io/v1alpha1", "ClusterStorageContainer"),
}
_REQUIRED = re.compile(r"Invalid value for `(\w+)`, must not be `None`")
_PRIMITIVES = {"str": {"type": "string"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
               "float": {"type": "number"}, "object": {}, "datetime": {"type": "string"},
               # Go types the SDK models as structs that travel as strings (url.URL, a timestamp)
               "KnativeURL": {"type": "string"}, "KnativeVolatileTime": {"type": "string"}}


def read_models(wheel: Path) -> dict[str, dict[str, Any]]:
    """Class name -> {"types": {attr: type}, "json": {attr: json name}, "required": {attr}}."""
    models: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if not re.match(r"kserve/models/(v1alpha1|v1beta1|knative|net_url)_\w+\.py$", name):
                continue
            source = z.read(name).decode()
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, ast.ClassDef):
                    continue
                found: dict[str, Any] = {}
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) \
                            and stmt.targets[0].id in ("openapi_types", "attribute_map"):
                        found[stmt.targets[0].id] = ast.literal_eval(stmt.value)
                if "openapi_types" in found:
                    models[node.name] = {"types": found["openapi_types"], "json": found["attribute_map"],
                                         "required": set(_REQUIRED.findall(source))}
    return models


class Builder:
    def __init__(self, models: dict[str, dict[str, Any]], k8s: dict[str, Any]):
        self.models, self.k8s = models, k8s
        self.definitions: dict[str, Any] = {}
        self.opaque: set[str] = set()  # V1beta1MetricQuantity (a string or number), Knative's status types

    def k8s_name(self, type_name: str) -> str:
        if type_name == "ResourceQuantity":
            return "io.k8s.apimachinery.pkg.api.resource.Quantity"
        m = re.match(r"K8sIoApi([A-Z][a-z]+)(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w+)$", type_name)
        if m:
            return f"io.k8s.api.{m[1].lower()}.{m[2].lower()}.{m[3]}"
        short = re.sub(r"^V1", "", type_name)
        for prefix in ("io.k8s.api.core.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1.", "io.k8s.api.apps.v1."):
            if prefix + short in self.k8s:
                return prefix + short
        raise KeyError(f"no Kubernetes definition for {type_name}")

    def add_k8s(self, name: str) -> None:
        if name in self.definitions:
            return
        definition = _strip(self.k8s[name])
        self.definitions[name] = definition
        for ref in re.findall(r'"\$ref": "#/definitions/([^"]+)"', json.dumps(definition)):
            self.add_k8s(ref)

    def schema(self, type_name: str) -> dict[str, Any]:
        type_name = type_name.strip()
        if type_name in _PRIMITIVES:
            return dict(_PRIMITIVES[type_name])
        if m := re.match(r"list\[(.+)\]$", type_name):
            return {"type": "array", "items": self.schema(m[1])}
        if m := re.match(r"dict\(str, (.+)\)$", type_name):
            return {"type": "object", "additionalProperties": self.schema(m[1])}
        if type_name in self.models:
            self.add_model(type_name)
            return {"$ref": f"#/definitions/{type_name}"}
        if type_name.startswith(("V1alpha", "V1beta")):  # a scalar type the SDK has no model for
            self.opaque.add(type_name)
            return {"type": ["string", "number"]}
        if type_name.startswith("Knative"):  # Knative's status types the SDK does not carry: written by KServe
            self.opaque.add(type_name)
            return {"type": "object"}
        name = self.k8s_name(type_name)
        self.add_k8s(name)
        return {"$ref": f"#/definitions/{name}"}

    def add_model(self, type_name: str) -> None:
        if type_name in self.definitions:
            return
        model = self.models[type_name]
        self.definitions[type_name] = {}  # a placeholder, for recursive types
        properties = {model["json"][attr]: self.schema(t) for attr, t in model["types"].items()}
        definition: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        required = sorted(model["json"][a] for a in model["required"] if a in model["json"])
        if required:
            definition["required"] = required
        self.definitions[type_name] = definition


def _strip(value: Any) -> Any:
    """A Kubernetes definition without its prose and extension keys, with local references."""
    if isinstance(value, dict):
        out = {k: _strip(v) for k, v in value.items() if k != "description" and not k.startswith("x-kubernetes")}
        if "$ref" in out:
            out["$ref"] = "#/definitions/" + re.split(r"#/(?:\$defs|definitions)/", out["$ref"])[-1]
        return out
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def build(wheel: Path, root_type: str = "V1beta1InferenceService") -> dict[str, Any]:
    import kubernetes_validate

    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    k8s = json.loads((folder / "_definitions.json").read_text())["$defs"]
    builder = Builder(read_models(wheel), k8s)
    root = builder.schema(root_type)
    root_def = builder.definitions[root_type]
    api_version, kind = KINDS[root_type]
    # The object as a client sends it: apiVersion and kind fixed, metadata and spec required.
    root_def["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
    root_def["properties"]["kind"] = {"type": "string", "enum": [kind]}
    root_def["required"] = sorted({*root_def.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    wheel_name = wheel.name
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "title": f"{kind} {api_version}",
            "description": f"Generated by tools/kserve_schema.py from {wheel_name} and kubernetes-validate's "
                           f"Kubernetes {K8S_VERSION} definitions. Types without a model (left open): "
                           + ", ".join(sorted(builder.opaque)),
            **root, "definitions": dict(sorted(builder.definitions.items()))}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.kserve_schema", description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", type=Path, help="the kserve wheel (pip download kserve==0.21.0 --no-deps)")
    p.add_argument("--type", default="V1beta1InferenceService", choices=sorted(KINDS), help="the root type")
    args = p.parse_args(argv)
    json.dump(build(args.wheel, args.type), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
