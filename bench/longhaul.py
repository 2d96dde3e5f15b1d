"""The long-haul profile: every path over a delayed link (`python -m bench --profile long-haul`).

A delay proxy (bench/delay.py, one process per delay) sits between the workstation
and sshd, and in front of PostgreSQL and iperf3 for the direct path; sshd reaches
the databases without delay, as a bastion next to its databases does. Per round,
per delay, every path (rotated order): time from start to the first `SELECT 1`, a
new connection through the running forward (connect + `SELECT 1`), a 62.5 MB
`COPY bulk TO STDOUT` download (psql, timed by the server round trip of the COPY
alone), one iperf3 stream each way of the same size, and the forwarder's RSS after
the transfers (the window's memory).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import measure
from bench.paths import Running, _poll_select_one, _select_one
from bench.runner import Results, log
from bench.servers import HOST, Servers

BULK_ROWS = 62_500  # x 1000 bytes: the 62.5 MB COPY
DELAYS_MS = (25.0, 10.0)  # one way: RTT 50 ms and 20 ms


@dataclass(frozen=True)
class LongHaul:
    delays_ms: tuple[float, ...] = DELAYS_MS
    bulk_bytes: int = BULK_ROWS * 1000
    new_conns: int = 5
    link_window: int = 6 * 1024 * 1024


QUICK_LONGHAUL = LongHaul(delays_ms=(10.0,), bulk_bytes=4_000_000, new_conns=2)

# figure -> (title, format, higher is better)
FIGURES: dict[str, tuple[str, str, bool]] = {
    "copy_down_mbs": ("COPY … TO STDOUT download MB/s", "{:.1f}", True),
    "down_mbs": ("iperf3 download MB/s", "{:.1f}", True),
    "copy_up_mbs": ("COPY … FROM STDIN upload MB/s", "{:.1f}", True),
    "new_conn_ms": ("new connection + SELECT 1 ms (tunnel up)", "{:.1f}", False),
    "ttfq_ms": ("start → first SELECT 1 ms", "{:.0f}", False),
    "rss_mib": ("forwarder RSS after the transfers MiB", "{:.1f}", False),
}


class LinkSshd:
    """The bench sshd as the workstation sees it: through the delay proxy's port."""

    def __init__(self, real: Any, port: int) -> None:
        self.real = real
        self.port = port
        self.host = real.host
        self.user = real.user
        self.host_public_key = real.host_public_key

    @property
    def pid(self) -> int:
        return int(self.real.pid)

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_public_key}"

    def ssh_args(self, identity_path: Any, known_hosts_path: Any) -> list[str]:
        args = list(self.real.ssh_args(identity_path, known_hosts_path))
        args[args.index("-p") + 1] = str(self.port)
        return args


@dataclass
class Link:
    delay_ms: float
    servers: Servers  # sshd replaced by the proxied view
    direct: dict[str, int]  # proxied database ports for the direct path


class LinkDirect:
    key = "direct"
    label = "plain TCP over the same link (the limit)"

    def __init__(self, link: Link) -> None:
        self.link = link

    def start(self, servers: Servers, copies: int = 1, pg_only: bool = False) -> Running:
        t0 = time.perf_counter()
        asyncio.run(_poll_select_one(self.link.direct["pg"], servers, 20))
        return Running(dict(self.link.direct), [], (time.perf_counter() - t0) * 1000)


def create_bulk_table(servers: Servers) -> None:
    """`bulk`: BULK_ROWS rows of ~1000 bytes of text (no TOAST), readable by the bench user."""
    pg = servers.pg
    bindir = Path(shutil.which("psql") or "/usr/bin/psql").parent
    sql = (
        "CREATE TABLE IF NOT EXISTS bulk AS SELECT i, repeat(md5(i::text), 31) AS t "
        f"FROM generate_series(1, {BULK_ROWS}) i; GRANT SELECT ON bulk TO {pg.user}"
    )
    subprocess.run(
        [str(bindir / "psql"), "-X", "-q", "-h", str(pg.socket_dir), "-p", str(pg.port),
         "-U", "postgres", "-d", pg.database, "-c", sql],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def copy_down(port: int, servers: Servers, nbytes: int) -> float:
    """MB/s of `COPY (…) TO STDOUT` through `port`: psql (C) sends the COPY on an open
    connection; `\\timing` reports the statement alone (no connection set-up)."""
    rows = max(1, nbytes // 1000)
    query = f"COPY (SELECT * FROM bulk LIMIT {rows}) TO STDOUT"
    proc = subprocess.run(
        ["psql", "-X", "-q", "-h", HOST, "-p", str(port), "-U", servers.pg.user,
         "-d", servers.pg.database, "-o", "/dev/null", "-c", "\\timing on", "-c", query],
        capture_output=True, text=True, env=servers.pg_env(), timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"psql COPY failed: {proc.stderr.strip()[-300:]}")
    found = re.search(r"Time: ([\d.]+) ms", proc.stdout + proc.stderr)
    if found is None:
        raise RuntimeError(f"psql printed no timing: {proc.stdout[-200:]}")
    return rows * 1000 / (float(found.group(1)) / 1000) / 1e6


def bulk_file(servers: Servers, nbytes: int) -> Path:
    """The upload's data: `COPY … FROM STDIN` text rows like the bulk table's (~1000 bytes)."""
    path = servers.workdir / f"bulk-{nbytes}.txt"
    if not path.exists():
        import hashlib

        with open(path, "w") as f:
            for i in range(1, max(1, nbytes // 1000) + 1):
                f.write(f"{i}\t{hashlib.md5(str(i).encode()).hexdigest() * 31}\n")
    return path


def copy_up(port: int, servers: Servers, nbytes: int) -> float:
    """MB/s of `\\copy … FROM` a file through `port` into a temporary table (no WAL):
    timed by psql for the statement alone, so it ends when the server has it all."""
    path = bulk_file(servers, nbytes)
    size = path.stat().st_size
    proc = subprocess.run(
        ["psql", "-X", "-q", "-h", HOST, "-p", str(port), "-U", servers.pg.user,
         "-d", servers.pg.database, "-c", "CREATE TEMP TABLE up (i int, t text)",
         "-c", "\\timing on", "-c", f"\\copy up FROM '{path}'"],
        capture_output=True, text=True, env=servers.pg_env(), timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"psql COPY FROM failed: {proc.stderr.strip()[-300:]}")
    found = re.search(r"Time: ([\d.]+) ms", proc.stdout + proc.stderr)
    if found is None:
        raise RuntimeError(f"psql printed no timing: {proc.stdout[-200:]}")
    return size / (float(found.group(1)) / 1000) / 1e6


def new_connections(port: int, servers: Servers, count: int) -> float:
    async def run() -> list[float]:
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            await _select_one(port, servers)
            samples.append((time.perf_counter() - t0) * 1000)
        return samples

    return statistics.median(asyncio.run(run()))


def measure_link(path: Any, servers: Servers, lh: LongHaul, figures: dict[str, float]) -> None:
    running: Running = path.start(servers)
    try:
        if running.ttfq_ms is not None:
            figures["ttfq_ms"] = running.ttfq_ms
        port = running.ports["pg"]
        figures["new_conn_ms"] = new_connections(port, servers, lh.new_conns)
        figures["copy_down_mbs"] = copy_down(port, servers, lh.bulk_bytes)
        seconds = 60.0
        down = measure.iperf3(running.ports["iperf"], seconds=seconds, reverse=True,
                              nbytes=lh.bulk_bytes)  # fmt: skip
        figures["down_mbs"] = down.mb_per_s
        figures["copy_up_mbs"] = copy_up(port, servers, lh.bulk_bytes)
        if running.pids:
            figures["rss_mib"] = measure.memory_mib(running.pids)[0]
    finally:
        running.stop()


@contextmanager
def delay_links(servers: Servers, lh: LongHaul) -> Iterator[list[Link]]:
    """One delay proxy per delay (its own process), stopped on exit."""
    with ExitStack() as stack:
        links = []
        for delay in lh.delays_ms:
            targets = [servers.sshd.port, servers.pg.port, servers.iperf_port]
            args = [sys.executable, "-m", "bench.delay", "--delay-ms", f"{delay:g}",
                    "--link-window", str(lh.link_window)]  # fmt: skip
            for target in targets:
                args += ["--target", str(target)]
            proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                cwd=Path(__file__).resolve().parent.parent,
            )  # fmt: skip
            stack.callback(_stop, proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the delay proxy did not start")
            ports = {int(k): int(v) for k, v in json.loads(line)["ports"].items()}
            sshd = LinkSshd(servers.sshd, ports[servers.sshd.port])
            with open(servers.known_hosts_path, "a") as f:
                f.write(sshd.known_hosts_line() + "\n")
            view = replace(servers, sshd=sshd)  # type: ignore[arg-type]
            direct = {"pg": ports[servers.pg.port], "iperf": ports[servers.iperf_port]}
            links.append(Link(delay, view, direct))
        yield links


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def key(path_key: str, delay: float) -> str:
    return f"{path_key}@{delay:g}"


def run_longhaul(
    paths_for: dict[float, list[Any]], links: list[Link], rounds: int, lh: LongHaul
) -> Results:
    """Rounds; in each, every delay and every path once (rotated). Figures are keyed
    `path@delay` so paired ratios come from runner.paired_ratios."""
    results = Results()
    t0 = time.monotonic()
    for index in range(rounds):
        figures: dict[str, dict[str, float]] = {}
        for link in links:
            paths = paths_for[link.delay_ms]
            order = paths[index % len(paths) :] + paths[: index % len(paths)]
            for path in order:
                name = key(path.key, link.delay_ms)
                log(f"long-haul round {index + 1}/{rounds}: {name} ms")
                try:
                    measure_link(path, link.servers, lh, figures.setdefault(name, {}))
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    results.errors.append(f"long-haul round {index + 1} {name}: {exc}")
                    log(f"  failed: {exc}")
        results.rounds.append(figures)
    results.elapsed_s = time.monotonic() - t0
    return results
