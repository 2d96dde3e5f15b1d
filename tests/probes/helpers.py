"""Running a probe and looking at what a user would see."""

from __future__ import annotations

from tunnel_tui.core.model import Database, DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.probes.base import probe_for


async def run_probe(
    kind: DbKind,
    port: int,
    *,
    user: str = "",
    database: str = "",
    password: str | None = None,
    host: str = "127.0.0.1",
    db_host: str = "127.0.0.1",
    options: dict[str, str] | None = None,
    timeout: float = 10.0,
    name: str | None = "mydb",
) -> dict[str, StepResult]:
    db = Database(kind, db_host, port, database, user, tuple(sorted((options or {}).items())))
    secret = Secret(password) if password is not None else None
    results: dict[str, StepResult] = {}
    async for result in probe_for(kind).check(
        host=host, port=port, database=db, password=secret, timeout=timeout, name=name
    ):
        assert result.step not in results, f"step {result.step} reported twice"
        results[result.step] = result
    if password:
        for result in results.values():
            text = f"{result.detail} {result.hint or ''}"
            assert password not in text, f"the password leaked into {result.step}"
    return results


def statuses(results: dict[str, StepResult]) -> dict[str, str]:
    return {step: result.status.value for step, result in results.items()}
