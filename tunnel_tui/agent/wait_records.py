"""The agent's waits, on disk: `state/waits.json` (0600, written atomically), so an
agent that restarts resumes each wait with its ORIGINAL deadline.

    {"version": 1, "waits": {"key:NAME": {"kind": "key", "name": "NAME",
                                          "until": "2026-12-04T21:30:00Z"}}}

Nothing secret is recorded: a restarted agent reads the keys from its own store (as
for autostart). A file that cannot be read is logged and treated as empty: a lost wait
is retried by the user; a broken agent start helps nobody.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tunnel_tui.core import paths
from tunnel_tui.core.atomic import read_private_file, write_private_file
from tunnel_tui.core.errors import TunnelTuiError

log = logging.getLogger("tunnel_tui.agent")

FILE_NAME = "waits.json"
KIND_KEY = "key"  # up --wait-for-key
KIND_ROTATION = "rotation"  # rotate-key --manual --background


@dataclass(frozen=True)
class WaitRecord:
    name: str  # the connection
    until: datetime  # UTC
    kind: str = KIND_KEY

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def path(home: Path | None) -> Path:
    return paths.state_dir(home) / FILE_NAME


def load(home: Path | None, kind: str | None = None) -> dict[str, WaitRecord]:
    """The recorded waits by name (of one `kind`), or by id (all kinds)."""
    records = _load(home)
    if kind is None:
        return records
    return {r.name: r for r in records.values() if r.kind == kind}


def _load(home: Path | None) -> dict[str, WaitRecord]:
    try:
        raw = read_private_file(path(home))
    except TunnelTuiError as exc:
        log.warning("waits not resumed: %s", exc.message)
        return {}
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
        records = {}
        for item in dict(data.get("waits") or {}).values():
            until = datetime.fromisoformat(str(item["until"]).replace("Z", "+00:00"))
            record = WaitRecord(
                str(item["name"]), until.astimezone(UTC), str(item.get("kind", KIND_KEY))
            )
            records[record.id] = record
        return records
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("waits not resumed: %s is unreadable (%s)", path(home), exc)
        return {}


def _save(home: Path | None, records: dict[str, WaitRecord]) -> None:
    paths.ensure_private_dir(paths.state_dir(home))
    waits = {
        r.id: {"kind": r.kind, "name": r.name, "until": r.until.isoformat().replace("+00:00", "Z")}
        for r in sorted(records.values(), key=lambda r: r.id)
    }
    data = json.dumps({"version": 1, "waits": waits}, indent=2) + "\n"
    write_private_file(path(home), data.encode())


def put(home: Path | None, record: WaitRecord) -> None:
    records = _load(home)
    records[record.id] = record
    _save(home, records)


def drop(home: Path | None, name: str, kind: str = KIND_KEY) -> None:
    records = _load(home)
    if records.pop(f"{kind}:{name}", None) is not None:
        _save(home, records)
