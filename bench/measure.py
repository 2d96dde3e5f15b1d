"""One figure each: pgbench, a MariaDB connect loop, iperf3 bulk, CPU time of a
process tree, RSS/PSS. Every external tool gets a bounded timeout."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass

import psutil
import pymysql

HOST = "127.0.0.1"


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    latency_ms: float
    transactions: int


def pgbench(
    port: int,
    *,
    clients: int,
    seconds: float,
    user: str,
    database: str,
    env: dict[str, str],
    connect_each: bool = False,
    transactions: int | None = None,
) -> PgbenchResult:
    """`pgbench -n -S` (select-only) through `port`. `transactions` (per client) instead
    of `-T` lets --quick runs last a fraction of a second."""
    binary = shutil.which("pgbench") or "pgbench"
    args = [binary, "-n", "-S", "-h", HOST, "-p", str(port), "-U", user, "-c", str(clients),
            "-j", str(min(clients, 2))]  # fmt: skip
    args += ["-t", str(transactions)] if transactions else ["-T", str(max(1, int(seconds)))]
    if connect_each:
        args.append("-C")
    proc = subprocess.run(
        [*args, database], capture_output=True, text=True, env=env, timeout=seconds + 120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed: {proc.stderr.strip()[-500:]}")
    out = proc.stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"actually processed: (\d+)", out).group(1))  # type: ignore[union-attr]
    return PgbenchResult(tps, latency, done)


def mysql_connects(port: int, *, count: int, user: str, password: str, database: str) -> float:
    """Median milliseconds to open a MariaDB connection (the server speaks first) and
    run `SELECT 1` on it, then close."""
    samples: list[float] = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn = pymysql.connect(
            host=HOST, port=port, user=user, password=password, database=database,
            connect_timeout=10, read_timeout=10,
            # Without this PyMySQL loads the system CA store on every connect (~50 ms).
            ssl_disabled=True,
        )  # fmt: skip
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            conn.close()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


@dataclass(frozen=True)
class BulkResult:
    mb_per_s: float
    bytes: int


def iperf3(port: int, *, seconds: float, reverse: bool, nbytes: int | None = None) -> BulkResult:
    """One TCP stream through `port` (upload: client → server; reverse: download), for
    whole `seconds` (iperf3 3.12 hangs on a fractional -t) or `nbytes`."""
    binary = shutil.which("iperf3") or "iperf3"
    args = [binary, "-c", HOST, "-p", str(port), "-J", "-O", "0"]
    args += ["-n", str(nbytes)] if nbytes else ["-t", str(max(1, round(seconds)))]
    if reverse:
        args.append("-R")
    deadline = time.monotonic() + 5
    while True:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
        data = json.loads(proc.stdout or "{}")
        # The server serves one test at a time and may still be closing the last one.
        if "busy" not in str(data.get("error", "")) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if proc.returncode != 0 or "error" in data:
        raise RuntimeError(f"iperf3 failed: {data.get('error') or proc.stderr[-300:]}")
    received = data["end"]["sum_received"]
    return BulkResult(received["bits_per_second"] / 8 / 1e6, int(received["bytes"]))


def tree_pids(root_pid: int) -> list[int]:
    try:
        root = psutil.Process(root_pid)
        return [root_pid] + [p.pid for p in root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds of these processes (and their reaped children)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) summed over the processes, MiB."""
    rss = pss = 0.0
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss / 2**20, pss / 2**20
