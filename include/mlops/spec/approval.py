"""A spec's human approval gate (`promotion.approval`, `serving.approval`): who may let a version through,
how long they have, and what a silence means."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mlops.documents import Strict

_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
ROLE_PREFIX = "role:"  # an assigned respondent that stands for every user of a role (mlops_airflow.auth)


class Approval(Strict):
    users: list[str] = Field(
        default_factory=list, description="Airflow user ids who may approve or reject (for the simple auth "
        "manager the user name, for FAB the numeric id).")
    roles: list[str] = Field(
        default_factory=list, description="Airflow roles whose users may approve or reject. Needs the platform's "
        "role-aware auth manager (mlops_airflow.auth); see the README's Human approval section.")
    timeout_minutes: float = Field(
        1440, gt=0, le=43200, description="How long the request waits for an answer.")
    on_timeout: Literal["reject", "approve"] = Field(
        "reject", description="What an unanswered request becomes when the time is up.")
    email: list[str] = Field(
        default_factory=list, description="Who gets the request by mail, with the link to it (besides the "
        "spec's notifications.email when it lists approval_requested).")

    @field_validator("users", "roles")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not v.strip() or v.startswith(ROLE_PREFIX)]
        if bad:
            raise ValueError(f"{bad}: a user or role is a non-empty name (write roles under `roles`, without "
                             f"'{ROLE_PREFIX}')")
        return [v.strip() for v in values]

    @field_validator("email", mode="before")
    @classmethod
    def _emails(cls, value: object) -> object:
        values = [value] if isinstance(value, str) else value
        if isinstance(values, list):
            bad = [v for v in values if not isinstance(v, str) or not _EMAIL.fullmatch(v.strip())]
            if bad:
                raise ValueError(f"{bad} is not an email address")
            return [v.strip() for v in values]
        return value

    @model_validator(mode="after")
    def _someone(self) -> "Approval":
        if not self.users and not self.roles:
            raise ValueError("name who may approve: at least one of `users` or `roles` (an approval nobody may "
                             "answer would only ever time out)")
        return self

    @property
    def respondents(self) -> list[dict[str, str]]:
        """Airflow's HITL `assigned_users`: the users, and one entry per role that the role-aware auth manager
        matches against the responding user's roles."""
        return ([{"id": u, "name": u} for u in self.users]
                + [{"id": f"{ROLE_PREFIX}{r}", "name": f"any user with role {r}"} for r in self.roles])

    def who(self) -> str:
        parts = [", ".join(self.users)] if self.users else []
        parts += [f"role(s) {', '.join(self.roles)}"] if self.roles else []
        return " or ".join(parts)
