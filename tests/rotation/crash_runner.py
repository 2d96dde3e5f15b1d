"""Run one rotation in its own process, so a test can kill it between steps.

    python -m tests.rotation.crash_runner NAME KNOWN_HOSTS_FILE

TUNNEL_TUI_HOME, the D-Bus address of the test keyring and (optionally)
TUNNEL_TUI_TEST_CRASH_AFTER come from the environment. Each StepResult is printed as
one JSON line; exit 0 if every step passed, 1 otherwise (137 from the crash hook).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.fixtures.engine import MemoryKnownHosts
from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.steps import StepStatus
from tunnel_tui.rotation import rotate


async def main(name: str, known_hosts_file: Path) -> int:
    known_hosts = MemoryKnownHosts()
    for line in known_hosts_file.read_text().splitlines():
        host, port, key_type, blob = line.split()
        known_hosts.add(host, int(port), f"{key_type} {blob}")
    ok = True
    async for row in rotate(Catalog(), name, known_hosts=known_hosts):
        print(json.dumps(row.to_json()), flush=True)
        ok = ok and row.status is not StepStatus.FAIL
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], Path(sys.argv[2]))))
