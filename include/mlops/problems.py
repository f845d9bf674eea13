"""The platform's "every problem at once" error: a header naming what was checked, then each problem
with its fix, one per line. Specs, the pool catalogue and run requests raise subclasses of it."""

from __future__ import annotations


class ProblemsError(ValueError):
    """A list of problems found together, so one round of fixes can address them all."""

    def __init__(self, header: str, problems: list[str]):
        self.header = header
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{header}:\n{lines}")
