"""Benchmark (run by hand, not collected by pytest): how fast `status --json` answers.

    .venv/bin/python tests/agent/bench_status_latency.py [--connections 20] [--runs 30]

Starts a private agent for a throwaway home with N configured connections (config
only; the cost of a status is the same whether tunnels are up or down: the agent
answers from memory), then reports medians and p95 of:
  - `python -c pass` (the interpreter's floor on this machine),
  - `tunnel-tui status --json` as a separate process (what a user or script pays),
  - one `AgentClient.status()` round trip inside a process (what the TUI pays).
Interleaved rounds, because these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _populate(home: Path, count: int) -> None:
    from datetime import UTC, datetime

    from tunnel_tui.core import config, keys
    from tunnel_tui.core.model import Connection, Database, DbKind, Key, KeyType, SshEndpoint

    material = keys.generate()
    with config.update(home) as cfg:
        cfg.keys["k-bench"] = Key(
            id="k-bench",
            name="bench",
            type=KeyType.ED25519,
            public_key=material.public_line,
            fingerprint=material.fingerprint,
            created=datetime.now(UTC),
        )
        for i in range(count):
            name = f"db{i:03d}"
            cfg.connections[name] = Connection(
                name=name,
                database=Database(DbKind.POSTGRESQL, f"db{i}.internal", 5432, "app", "app"),
                bastion=SshEndpoint("bastion.example.com", "tunnel", 22),
                key_id="k-bench",
                local_port=20000 + i,
            )


def _wall(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _summary(label: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"{label:<38} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   n={len(ms)}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tt-bench-", dir="/tmp"))
    home = root / "h"
    env = dict(os.environ, TUNNEL_TUI_HOME=str(home))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    os.environ["TUNNEL_TUI_HOME"] = str(home)
    agent = None
    try:
        _populate(home, args.connections)
        from tunnel_tui.agent.client import AgentClient, AgentNotRunning

        agent = subprocess.Popen(
            [sys.executable, "-m", "tunnel_tui.agent", "--home", str(home)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = AgentClient(home)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except AgentNotRunning:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        assert len(client.status()) == args.connections

        bare, cli, fast, inproc = [], [], [], []
        cli_args = [sys.executable, "-m", "tunnel_tui", "status", "--json"]
        # The click-free entry point (tunnel_tui.entry:main), as a console script
        # pointing at it would run.
        fast_args = [
            sys.executable,
            "-c",
            "from tunnel_tui.entry import main; main()",
            "status",
            "--json",
        ]
        for _ in range(args.runs):
            bare.append(_wall([sys.executable, "-c", "pass"], env))
            cli.append(_wall(cli_args, env))
            fast.append(_wall(fast_args, env))
            start = time.perf_counter()
            client.status()
            inproc.append(time.perf_counter() - start)
        print(f"{args.connections} configured connections, {args.runs} interleaved rounds")
        print(_summary("python -c pass (floor)", bare))
        print(_summary("tunnel-tui status --json (process)", cli))
        print(_summary("same, click-free entry point", fast))
        print(_summary("AgentClient.status() (round trip)", inproc))
        print(
            "status over the floor: median "
            f"{(statistics.median(cli) - statistics.median(bare)) * 1000:.1f} ms "
            f"(click-free: {(statistics.median(fast) - statistics.median(bare)) * 1000:.1f} ms)"
        )
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
