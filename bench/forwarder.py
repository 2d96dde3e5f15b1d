"""A forwarder in its own process, so its CPU time and memory are measured alone.

`python -m bench.forwarder` reads one JSON spec line on stdin (the private key
path and the bench database's password travel here, never in argv or the
environment), brings the tunnels up, prints one JSON line
`{"ports": {...}, "ttfq_ms": ..., "pid": ...}` and serves until stdin closes.

Modes: `engine` (tunnel_tui.engine.TunnelEngine, in-process, uvloop as the agent
uses it) and `sshtunnel` (paramiko). Time to first query (`ttfq_ms`) is measured
inside the process from the start call to the end of the first `SELECT 1`, so it
excludes the interpreter's start-up (the engine-level figure of PERF.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg


async def _first_select(port: int, spec: dict[str, Any]) -> None:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user=spec["pg_user"], password=spec["pg_password"],
        database=spec["pg_database"], ssl=False, timeout=10,
    )  # fmt: skip
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def _wait_stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def run_engine(spec: dict[str, Any]) -> None:
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.model import Connection, Database, DbKind, SshEndpoint
    from tunnel_tui.core.secret import Secret
    from tunnel_tui.engine import EngineSettings, TunnelEngine

    known = KnownHosts(Path(spec["workdir"]) / "tt_known_hosts", read_user_known_hosts=False)
    known.add(spec["ssh_host"], spec["ssh_port"], spec["host_public_key"])
    keys = {"bench": Secret(Path(spec["key_path"]).read_text())}
    bastion = SshEndpoint(spec["ssh_host"], spec["ssh_user"], spec["ssh_port"])
    settings = EngineSettings(**spec.get("engine_settings", {}))
    fixed: dict[str, int] = spec.get("local_ports", {})  # workers: the shared ports

    def connection(name: str, port: int) -> Connection:
        db = Database(DbKind.POSTGRESQL, "127.0.0.1", port, "", "")
        return Connection(name=name, database=db, bastion=bastion, key_id="bench",
                          local_port=fixed.get(name))

    async with TunnelEngine(known, settings) as engine:
        ports: dict[str, int] = {}
        t0 = time.perf_counter()
        status = await engine.start(connection("pg", spec["targets"]["pg"]), keys)
        await _first_select(int(status.local_port), spec)
        ttfq = (time.perf_counter() - t0) * 1000
        ports["pg"] = int(status.local_port)
        for name, port in spec["targets"].items():
            if name == "pg":
                continue
            for i in range(int(spec.get("copies", 1))):
                label = name if i == 0 else f"{name}{i}"
                ports[label] = int((await engine.start(connection(label, port), keys)).local_port)
        print(json.dumps({"ports": ports, "ttfq_ms": ttfq}), flush=True)
        await _wait_stdin_closed()


def run_workers(spec: dict[str, Any]) -> None:
    """`workers` engine processes (this one and N-1 children), each with its own SSH
    connection, sharing every tunnel's local port through SO_REUSEPORT."""
    import subprocess

    from tests.fixtures.ports import free_port

    count = int(spec["workers"])
    names = [n if i == 0 else f"{n}{i}" for n in spec["targets"]
             for i in range(int(spec.get("copies", 1)) if n != "pg" else 1)]  # fmt: skip
    ports = {name: free_port() for name in names}
    child_spec = dict(spec, workers=1, local_ports=ports, mode="engine")
    child_spec["engine_settings"] = dict(spec.get("engine_settings", {}), reuse_port=True)
    children = []
    try:
        for _ in range(count - 1):
            child = subprocess.Popen(
                [sys.executable, "-m", "bench.forwarder"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(json.dumps(child_spec) + "\n")
            child.stdin.flush()
            if not child.stdout.readline():
                raise RuntimeError("a worker failed to start")
            children.append(child)
        print(json.dumps({"pids": [c.pid for c in children]}), flush=True)
        from tunnel_tui.engine.loop import install_uvloop

        install_uvloop()
        asyncio.run(run_engine(child_spec))
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            child.wait(timeout=10)


def run_sshtunnel(spec: dict[str, Any]) -> None:
    import logging

    import sshtunnel

    logging.getLogger("paramiko").setLevel(logging.ERROR)
    forwarders: list[Any] = []

    def forwarder(port: int) -> Any:
        fw = sshtunnel.SSHTunnelForwarder(
            (spec["ssh_host"], spec["ssh_port"]),
            ssh_username=spec["ssh_user"],
            ssh_pkey=spec["key_path"],
            allow_agent=False,
            host_pkey_directories=[],
            remote_bind_address=("127.0.0.1", port),
            local_bind_address=("127.0.0.1", 0),
            set_keepalive=5.0,
        )
        fw.start()
        forwarders.append(fw)
        return fw

    try:
        ports: dict[str, int] = {}
        t0 = time.perf_counter()
        first = forwarder(spec["targets"]["pg"])
        asyncio.run(_first_select(first.local_bind_port, spec))
        ttfq = (time.perf_counter() - t0) * 1000
        ports["pg"] = first.local_bind_port
        for name, port in spec["targets"].items():
            if name == "pg":
                continue
            for i in range(int(spec.get("copies", 1))):
                ports[name if i == 0 else f"{name}{i}"] = forwarder(port).local_bind_port
        print(json.dumps({"ports": ports, "ttfq_ms": ttfq}), flush=True)
        sys.stdin.read()
    finally:
        for fw in forwarders:
            fw.stop()


def main() -> int:
    spec = json.loads(sys.stdin.readline())
    if spec["mode"] == "engine" and int(spec.get("workers", 1)) > 1:
        run_workers(spec)
    elif spec["mode"] == "engine":
        from tunnel_tui.engine.loop import install_uvloop

        if spec.get("uvloop", True):
            install_uvloop()
        asyncio.run(run_engine(spec))
    elif spec["mode"] == "sshtunnel":
        run_sshtunnel(spec)
    else:
        raise SystemExit(f"unknown mode {spec['mode']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
