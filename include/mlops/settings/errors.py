"""One message for every bad variable: its name, its value and what to set instead."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from mlops.settings.model import SECTIONS, VARIABLES


class SettingsError(ValueError):
    """Platform settings that cannot be used, all of them at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = "1 platform setting is wrong" if len(problems) == 1 else f"{len(problems)} platform settings are wrong"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


def field_of(env: str) -> FieldInfo:
    section, name = VARIABLES[env]
    return SECTIONS[section].model_fields[name]


def shown_default(info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "shown" in extra:
        return str(extra["shown"])
    if info.default is None:
        return "not set"
    default = info.default
    if isinstance(default, bool):
        default = str(default).lower()
    elif isinstance(default, tuple):
        default = ",".join(default)
    return f"`{default}`"


def describe(exc: ValidationError, environ: Mapping[str, str]) -> list[str]:
    problems = []
    for error in exc.errors():
        env = next((str(part) for part in error["loc"] if str(part) in VARIABLES), None)
        if env is None:
            problems.append(f"{'.'.join(map(str, error['loc']))}: {error['msg']}")
            continue
        info = field_of(env)
        value = environ.get(env, error.get("input"))
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        example = f" (e.g. {env}={extra['example']})" if "example" in extra else ""
        if error["type"] == "literal_error":
            problems.append(f"{env}={value!r} is not one of {error['ctx']['expected']}; fix or unset it")
            continue
        if error["type"] == "bool_parsing":
            reason = "not true or false; give true/false, 1/0, yes/no or on/off"
        elif error["type"] in ("int_parsing", "int_from_float"):
            reason = f"not a whole number; give one{example}"
        else:
            message = error["msg"].removeprefix("Value error, ")
            reason = f"{message[:1].lower()}{message[1:]}{example}"
        problems.append(f"{env}={value!r}: {reason}, or unset it for the default ({shown_default(info)})")
    return problems
