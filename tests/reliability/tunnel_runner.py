"""A tunnel process for fault tests: the real TunnelEngine, run as its own process
(so a test can SIGSTOP it, or run it inside a network namespace).

Reads one JSON spec line on stdin (the private key travels there, never in argv or
the environment), then prints one JSON line per status event:
    {"event": "status", ...TunnelStatus.to_json()...}
or {"event": "error", "type": ..., "message": ...} if start() fails (then exits 1).
Stops the tunnel and exits 0 when stdin closes or on SIGTERM.

Spec: name, bastion [host, port, user], target [host, port], key_pem,
host_key_line (trusted before connecting), keepalive [interval, count],
backoff [base, cap], connect_timeout, local_port (0 = pick), local_host.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from tunnel_tui.core.known_hosts import KnownHosts
from tunnel_tui.core.model import Connection, Database, DbKind, Keepalive, SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelStatus
from tunnel_tui.engine import EngineSettings, TunnelEngine


def emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main() -> int:
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    spec = json.loads(line)
    host, port, user = spec["bastion"]
    known_hosts = KnownHosts()
    known_hosts.add(host, port, spec["host_key_line"])
    conn = Connection(
        name=spec["name"],
        database=Database(kind=DbKind.POSTGRESQL, host=spec["target"][0],
                          port=spec["target"][1], database="", user=""),
        bastion=SshEndpoint(host=host, port=port, user=user),
        key_id="k",
        local_host=spec.get("local_host", "127.0.0.1"),
        local_port=spec.get("local_port") or None,
        keepalive=Keepalive(*spec.get("keepalive", (1.0, 2))),
    )
    base, cap = spec.get("backoff", (0.1, 0.5))
    settings = EngineSettings(backoff_base=base, backoff_cap=cap,
                              connect_timeout=spec.get("connect_timeout", 5.0),
                              stats_interval=0.1)
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_reader(sys.stdin.fileno(), lambda: os.read(sys.stdin.fileno(), 4096) or done.set())

    def on_status(status: TunnelStatus) -> None:
        emit({"event": "status", **status.to_json()})

    engine = TunnelEngine(known_hosts, settings)
    engine.subscribe(on_status)
    try:
        await engine.start(conn, {"k": Secret(spec["key_pem"])})
    except Exception as exc:  # reported to the test, which asserts on it
        emit({"event": "error", "type": type(exc).__name__, "message": str(exc)})
        await engine.aclose()
        return 1
    await done.wait()
    await engine.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
