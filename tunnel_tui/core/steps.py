"""One checked step of a validation (or a rotation): the rows of the live log.

The validation stream, the probes, the rotation service, the CLI's JSON Lines and
the TUI all use this one type. Step ids are a contract (DESIGN.md "Decisions").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

VALIDATION_STEPS: tuple[str, ...] = (
    "config",
    "keyring",
    "resolve",
    "tcp",
    "host-key",
    "ssh-auth",
    "channel",
    "db-tls",
    "db-auth",
    "query",
)


class StepStatus(StrEnum):
    RUNNING = "running"  # shown while in progress; never the final status of a step
    OK = "ok"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class StepResult:
    step: str
    status: StepStatus
    elapsed_ms: float = 0.0
    detail: str = ""
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is StepStatus.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status.value,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "detail": self.detail,
            "hint": self.hint,
        }
