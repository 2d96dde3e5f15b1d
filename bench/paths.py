"""The ways to reach the databases that the benchmark compares.

Each path's `start(servers, copies)` brings up forwards for every target (PostgreSQL,
MariaDB, iperf3) and returns a `Running`: local ports, the PIDs whose CPU and
memory count as the forwarder's, and the time to the first `SELECT 1`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.servers import HOST, Servers
from tests.fixtures.ports import free_port

CIPHER = "aes128-gcm@openssh.com"


@dataclass
class Running:
    ports: dict[str, int]
    pids: list[int]  # the forwarder's processes (empty for direct TCP)
    ttfq_ms: float | None
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    on_stop: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for callback in self.on_stop:
            callback()
        for proc in self.procs:
            if proc.poll() is None:
                if proc.stdin is not None:
                    proc.stdin.close()  # the helper's signal to shut down cleanly
                else:
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


async def _select_one(port: int, servers: Servers, timeout: float = 10.0) -> None:
    conn = await asyncpg.connect(
        host=HOST, port=port, user=servers.pg.user, password=servers.pg.password,
        database=servers.pg.database, ssl=False, timeout=timeout,
    )  # fmt: skip
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def _poll_select_one(port: int, servers: Servers, deadline_s: float) -> None:
    """SELECT 1 as soon as something forwards `port` (bounded by deadline_s)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            await _select_one(port, servers, timeout=5)
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.001)


class Direct:
    key = "direct"
    label = "direct TCP (the limit)"

    def start(self, servers: Servers, copies: int = 1, pg_only: bool = False) -> Running:
        t0 = time.perf_counter()
        asyncio.run(_select_one(servers.pg.port, servers))
        return Running(dict(servers.targets), [], (time.perf_counter() - t0) * 1000)


class OpenSsh:
    key = "openssh"
    label = f"OpenSSH `ssh -N -L`, {CIPHER}"

    def _spawn(
        self, servers: Servers, forwards: dict[str, tuple[int, int]]
    ) -> subprocess.Popen[Any]:
        args = ["ssh", "-N", "-c", CIPHER, "-o", "ExitOnForwardFailure=yes"]
        for local, remote in forwards.values():
            args += ["-L", f"{HOST}:{local}:{HOST}:{remote}"]
        args += servers.sshd.ssh_args(servers.key_path, servers.known_hosts_path)
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start(self, servers: Servers, copies: int = 1, pg_only: bool = False) -> Running:
        targets = {"pg": servers.pg.port} if pg_only else servers.targets
        forwards = {name: (free_port(), port) for name, port in targets.items()}
        t0 = time.perf_counter()
        proc = self._spawn(servers, forwards)
        running = Running({n: lp for n, (lp, _) in forwards.items()}, [proc.pid], None, [proc])
        try:
            asyncio.run(_poll_select_one(forwards["pg"][0], servers, 20))
            running.ttfq_ms = (time.perf_counter() - t0) * 1000
            # One `ssh -L` per extra tunnel, as people run them.
            for i in range(1, copies):
                extra = {f"pg{i}": (free_port(), servers.pg.port)}
                p = self._spawn(servers, extra)
                running.procs.append(p)
                running.pids.append(p.pid)
                running.ports[f"pg{i}"] = extra[f"pg{i}"][0]
                asyncio.run(_poll_select_one(extra[f"pg{i}"][0], servers, 20))
        except BaseException:
            running.stop()
            raise
        return running


class Helper:
    """A forwarder in its own process (bench/forwarder.py)."""

    mode = ""

    def extra_spec(self) -> dict[str, Any]:
        return {}

    def start(self, servers: Servers, copies: int = 1, pg_only: bool = False) -> Running:
        if pg_only:  # `copies` tunnels, all to PostgreSQL
            targets, extra = {"pg": servers.pg.port, "x": servers.pg.port}, copies - 1
            if copies == 1:
                targets = {"pg": servers.pg.port}
        else:
            targets, extra = dict(servers.targets), 1
        spec = {
            "mode": self.mode,
            "ssh_host": servers.sshd.host,
            "ssh_port": servers.sshd.port,
            "ssh_user": servers.sshd.user,
            "host_public_key": servers.sshd.host_public_key,
            "key_path": str(servers.key_path),
            "workdir": str(servers.workdir),
            "targets": targets,
            "copies": max(1, extra),
            "pg_user": servers.pg.user,
            "pg_password": servers.pg.password,
            "pg_database": servers.pg.database,
            **self.extra_spec(),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.forwarder"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        running = Running({}, [proc.pid], None, [proc])
        try:
            proc.stdin.write(json.dumps(spec) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if line and "pids" in json.loads(line):  # worker processes, then ready
                running.pids += [int(p) for p in json.loads(line)["pids"]]
                line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"{self.mode} forwarder failed: {err[-1500:]}")
            ready = json.loads(line)
        except BaseException:
            running.stop()
            raise
        running.ports = {k: int(v) for k, v in ready["ports"].items()}
        running.ttfq_ms = float(ready["ttfq_ms"])
        return running


class Sshtunnel(Helper):
    key = "sshtunnel"
    label = "`sshtunnel` (paramiko)"
    mode = "sshtunnel"


class Engine(Helper):
    key = "engine"
    label = "tunnel-tui engine, in-process (uvloop)"
    mode = "engine"

    variant = False  # an experiment: measured in rounds, not for memory

    def __init__(
        self,
        settings: dict[str, Any] | None = None,
        uvloop: bool = True,
        key: str | None = None,
        label: str | None = None,
        workers: int = 1,
    ) -> None:
        self.settings = settings or {}
        self.uvloop = uvloop
        self.workers = workers
        self.variant = key is not None
        if key:
            self.key = key
        if label:
            self.label = label

    def extra_spec(self) -> dict[str, Any]:
        return {
            "engine_settings": self.settings,
            "uvloop": self.uvloop,
            "workers": self.workers,
        }


class Agent:
    """tunnel-tui's real path: `tunnel-tui up NAME` (a CLI process) asks the running
    agent, which holds the tunnel. The agent lives across rounds, as it does for users;
    each round brings the tunnels up and takes them down again."""

    key = "agent"
    label = "tunnel-tui `up` via the agent"
    variant = False

    def __init__(
        self, uvloop: bool | None = None, key: str | None = None, label: str | None = None,
        home_suffix: str = "",
    ) -> None:
        # uvloop: None = the agent's own default (TUNNEL_TUI_UVLOOP as the user has it).
        self.uvloop = uvloop
        self.home_suffix = home_suffix  # one agent (and home) per long-haul link
        if key:
            self.key = key
        if label:
            self.label = label
        self.home: Path | None = None
        self.client: Any = None
        self.pid: int | None = None
        self.names: list[str] = []

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        assert self.home is not None
        env["TUNNEL_TUI_HOME"] = str(self.home)
        env["TUNNEL_TUI_SECRETS"] = "vault"
        # The CLI runs from cached bytecode, as an installed package does (pip compiles
        # it): with PYTHONDONTWRITEBYTECODE set, every `up` would compile our modules
        # again (~60 ms here) and measure something no user pays. A private cache, so
        # nothing is written into the source tree; `setup` fills it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.home.parent / f"pycache-{self.key}")
        return env

    def setup(self, servers: Servers, extra_pg: int = 19) -> None:
        """A tunnel-tui home (vault secrets) with pg, my, iperf and pg1..pgN; the agent."""
        from tunnel_tui.agent.client import ensure_agent
        from tunnel_tui.core.catalog import Catalog, ImportKey, ReuseKey
        from tunnel_tui.core.known_hosts import KnownHosts
        from tunnel_tui.core.paths import known_hosts_path
        from tunnel_tui.core.secret import Secret

        self.home = servers.workdir / f"tt-home-{self.key}{self.home_suffix}"
        self.home.mkdir(mode=0o700)
        os.environ["TUNNEL_TUI_SECRETS"] = "vault"  # the agent inherits it
        passphrase = Secret(secrets.token_urlsafe(24))
        catalog = Catalog(self.home, vault_passphrase=passphrase)
        ssh_url = f"ssh://{servers.sshd.user}@{servers.sshd.host}:{servers.sshd.port}"
        pg = f"postgresql://{servers.pg.user}@{HOST}:{servers.pg.port}/{servers.pg.database}"
        added = catalog.add("pg", pg, ssh_url, key=ImportKey(servers.key_path.read_bytes()))
        reuse = ReuseKey(added.key.id)
        catalog.add(
            "my", f"mysql://{servers.my.user}@{HOST}:{servers.my.port}/x", ssh_url, key=reuse
        )
        catalog.add("iperf", f"postgresql://x@{HOST}:{servers.iperf_port}/x", ssh_url, key=reuse)
        for i in range(1, extra_pg + 1):
            catalog.add(f"pg{i}", pg, ssh_url, key=reuse)
        KnownHosts(known_hosts_path(self.home), read_user_known_hosts=False).add(
            servers.sshd.host, servers.sshd.port, servers.sshd.host_public_key
        )
        saved = os.environ.get("TUNNEL_TUI_UVLOOP")
        if self.uvloop is not None:
            os.environ["TUNNEL_TUI_UVLOOP"] = "1" if self.uvloop else "0"
        try:
            self.client = ensure_agent(self.home)
        finally:
            if saved is None:
                os.environ.pop("TUNNEL_TUI_UVLOOP", None)
            else:
                os.environ["TUNNEL_TUI_UVLOOP"] = saved
        self.client.vault_unlock(passphrase)
        self.pid = int(self.client.ping()["pid"])
        # A first `up` and `status` (what a user's first run after installing does):
        # fills the bytecode cache and loads the agent's SSH stack before round 1.
        self.up("pg")
        self.down_all()
        self.status_json_ms(1)

    def up(self, name: str) -> int:
        proc = subprocess.run(
            [sys.executable, "-m", "tunnel_tui", "up", name, "--json"],
            capture_output=True, text=True, env=self._env(), timeout=60,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"tunnel-tui up {name} failed: {proc.stderr.strip()}")
        self.names.append(name)
        return int(json.loads(proc.stdout)["local_port"])

    def down_all(self) -> None:
        for name in self.names:
            self.client.down(name)
        self.names.clear()

    def start(self, servers: Servers, copies: int = 1, pg_only: bool = False) -> Running:
        assert self.pid is not None
        t0 = time.perf_counter()
        port = self.up("pg")
        asyncio.run(_select_one(port, servers))
        ttfq = (time.perf_counter() - t0) * 1000
        ports = {"pg": port}
        if not pg_only:
            ports.update(my=self.up("my"), iperf=self.up("iperf"))
        for i in range(1, copies):
            ports[f"pg{i}"] = self.up(f"pg{i}")
        return Running(ports, [self.pid], ttfq, on_stop=[self.down_all])

    def status_json_ms(self, count: int) -> list[float]:
        return [wall for wall, _ in self.status_json_samples(count)]

    def status_json_samples(self, count: int) -> list[tuple[float, float]]:
        """(wall ms, CPU ms of the CLI process) per `status --json`: on a loaded machine
        the CPU time says what the command costs when the wall time cannot."""
        import resource

        samples = []
        for _ in range(count):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "tunnel_tui", "status", "--json"],
                capture_output=True, env=self._env(), timeout=30, check=True,
            )  # fmt: skip
            wall = (time.perf_counter() - t0) * 1000
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
            samples.append((wall, cpu))
        return samples

    def close(self) -> None:
        if self.client is None or self.pid is None:
            return
        try:
            self.client.shutdown()
        except Exception:  # noqa: BLE001 - best effort, then the PID below
            pass
        import psutil

        try:
            process = psutil.Process(self.pid)
            try:
                process.wait(timeout=10)  # reaps it too: the agent is our child
            except psutil.TimeoutExpired:
                process.terminate()
                process.wait(timeout=10)
        except psutil.NoSuchProcess:
            pass
