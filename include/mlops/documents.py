"""What the platform's YAML documents (model specs, suites, the pool catalogue) share: a strict,
frozen pydantic base (an unknown key is a typo, not a field to ignore) and the YAML reader."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

# libyaml's loader when PyYAML has it: parsing specs is most of the DAG factory's cost.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
