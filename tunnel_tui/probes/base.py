"""The Probe protocol and the pieces every probe shares.

A probe checks a database through a local port (normally the tunnel's
127.0.0.1 listener): TLS as the connection's options ask (`db-tls`), the
credentials (`db-auth`) and a first query with the server version (`query`).
It yields one `StepResult` per step and stops at the first failure; the caller
marks the remaining steps `skip`. A probe that cannot really check a step
(no client library for that protocol) yields it as `skip` with a detail saying
what was and was not checked, never a silent `ok`.

No password ever reaches a detail, a hint or an exception text: every result
goes through `StepClock.result`, which redacts the password as a last defence.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import AsyncIterator
from typing import Protocol

from tunnel_tui.core.model import Database, DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult, StepStatus

PROBE_STEPS: tuple[str, ...] = ("db-tls", "db-auth", "query")

_MODULES: dict[DbKind, str] = {
    DbKind.POSTGRESQL: "postgresql",
    DbKind.MYSQL: "mysql",
    DbKind.CLICKHOUSE: "clickhouse",
    DbKind.VERTICA: "vertica",
    DbKind.TRINO: "trino",
}


class Probe(Protocol):
    kind: DbKind

    def check(
        self,
        *,
        host: str = "127.0.0.1",
        port: int,
        database: Database,
        password: Secret | None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> AsyncIterator[StepResult]:
        """Yield db-tls, db-auth, query results; stop after the first failure.

        `host`/`port` is where to connect (the tunnel); `database.host` is the name
        the server's certificate is checked against (the DB as the bastion sees
        it). `name` (the connection's name) only makes hints copy-pasteable.
        """
        ...


def probe_for(kind: DbKind) -> Probe:
    """The probe for a database kind (modules are imported lazily: each pulls
    in its driver)."""
    module = importlib.import_module(f"{__package__}.{_MODULES[DbKind(kind)]}")
    probe: Probe = module.PROBE
    return probe


def password_hint(user: str, name: str | None, password: Secret | None = None) -> str:
    command = f"tunnel-tui edit {name or 'NAME'} --db-password-stdin"
    if not password:
        return (
            f"the database rejected user {user} and no password is stored for this "
            f"connection: set one with {command}"
        )
    return f"the database rejected user {user}: check the password (re-enter it with {command})"


class StepClock:
    """Times one step and builds its result, redacting the password."""

    def __init__(self, step: str, password: Secret | None) -> None:
        self.step = step
        self._password = password
        self._start = time.perf_counter()

    def result(self, status: StepStatus, detail: str, hint: str | None = None) -> StepResult:
        elapsed = (time.perf_counter() - self._start) * 1000.0
        return StepResult(
            self.step, status, elapsed, self._redact(detail), self._redact(hint) if hint else hint
        )

    def ok(self, detail: str) -> StepResult:
        return self.result(StepStatus.OK, detail)

    def fail(self, detail: str, hint: str | None = None) -> StepResult:
        return self.result(StepStatus.FAIL, detail, hint)

    def skip(self, detail: str) -> StepResult:
        return self.result(StepStatus.SKIP, detail)

    def _redact(self, text: str) -> str:
        if self._password is not None and len(self._password) >= 1:
            value = self._password.reveal()
            if value and value in text:
                text = text.replace(value, "***")
        return text


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error as a person would say it (never a bare class name)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the connection closed before the server answered"
    text = str(exc).strip().splitlines()
    if text:
        return text[0][:limit]
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return type(exc).__name__


def no_answer(kind: str, database: Database, exc: BaseException, timeout: float) -> tuple[str, str]:
    """Detail and hint when the first exchange through the tunnel gets no answer.

    Names the database as the bastion sees it (the local tunnel port means nothing to
    the user), and only suspects the wrong kind of server when something did answer.
    """
    reason = first_line(exc)
    detail = f"no {kind} answer from {database.target}: {reason}"
    if isinstance(exc, TimeoutError):
        hint = (
            f"the bastion reached {database.target} but nothing answered within "
            f"{timeout:g} s: check that the database is running and not overloaded"
        )
    else:
        hint = f"check that {database.target} is a {kind} server"
    return detail, hint
