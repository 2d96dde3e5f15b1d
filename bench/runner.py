"""Rounds of measurements, interleaved: in each round every path runs once, in a
rotated order, so slow drifts of a shared machine hit every path alike; ratios
against OpenSSH are taken per round (paired), then summarised."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench import measure
from bench.paths import Running
from bench.servers import Servers


@dataclass(frozen=True)
class Durations:
    pgbench_s: float = 5.0
    pgbench_tx: int | None = None  # per client; replaces pgbench_s when set (--quick)
    connect_tx: int | None = None
    bulk_s: float = 3.0
    bulk_bytes: int | None = None  # replaces bulk_s when set (--quick)
    mysql_connects: int = 40

    memory_tunnels: int = 20
    status_samples: int = 5
    many_tunnels: int = 100  # the agent's status latency and RSS with this many up


QUICK = Durations(
    pgbench_s=1,
    pgbench_tx=100,
    connect_tx=10,
    bulk_s=1,
    bulk_bytes=16 << 20,
    mysql_connects=3,
    memory_tunnels=3,
    status_samples=2,
    many_tunnels=5,
)


@dataclass
class Results:
    rounds: list[dict[str, dict[str, float]]] = field(default_factory=list)  # path -> figures
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    status_json_ms: list[float] = field(default_factory=list)
    # The agent with Durations.many_tunnels up: tunnels, rss, pss, status_json_ms.
    many: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def measure_path(path: Any, servers: Servers, d: Durations, figures: dict[str, float]) -> None:
    """Fills `figures` as it goes, so a later failure keeps the earlier figures."""
    running: Running = path.start(servers)
    try:
        if running.ttfq_ms is not None:
            figures["ttfq_ms"] = running.ttfq_ms
        pg = dict(user=servers.pg.user, database=servers.pg.database, env=servers.pg_env())

        def cpu() -> tuple[float, float]:
            own = measure.cpu_seconds(running.pids)
            sshd = measure.cpu_seconds(measure.tree_pids(servers.sshd.pid)) if running.pids else 0
            return own, sshd

        r1 = measure.pgbench(
            running.ports["pg"], clients=1, seconds=d.pgbench_s, transactions=d.pgbench_tx, **pg
        )  # type: ignore[arg-type]
        figures.update(c1_tps=r1.tps, c1_lat_ms=r1.latency_ms)
        before = cpu()
        r8 = measure.pgbench(
            running.ports["pg"], clients=8, seconds=d.pgbench_s, transactions=d.pgbench_tx, **pg
        )  # type: ignore[arg-type]
        after = cpu()
        figures.update(c8_tps=r8.tps, c8_lat_ms=r8.latency_ms)
        if running.pids and r8.transactions:
            figures["cpu_us_per_tx"] = (after[0] - before[0]) / r8.transactions * 1e6
            figures["sshd_us_per_tx"] = (after[1] - before[1]) / r8.transactions * 1e6
        rc = measure.pgbench(
            running.ports["pg"],
            clients=1,
            seconds=d.pgbench_s,
            transactions=d.connect_tx,
            connect_each=True,
            **pg,
        )  # type: ignore[arg-type]
        figures["pg_connect_ms"] = rc.latency_ms
        figures["my_connect_ms"] = measure.mysql_connects(
            running.ports["my"], count=d.mysql_connects, user=servers.my.user,
            password=servers.my.password, database=servers.my.database,
        )  # fmt: skip
        before = cpu()
        bulk = dict(seconds=d.bulk_s, nbytes=d.bulk_bytes)
        up = measure.iperf3(running.ports["iperf"], reverse=False, **bulk)  # type: ignore[arg-type]
        down = measure.iperf3(running.ports["iperf"], reverse=True, **bulk)  # type: ignore[arg-type]
        after = cpu()
        figures.update(up_mbs=up.mb_per_s, down_mbs=down.mb_per_s)
        gigabytes = (up.bytes + down.bytes) / 1e9
        if running.pids and gigabytes > 0:
            figures["cpu_s_per_gb"] = (after[0] - before[0]) / gigabytes
            figures["sshd_s_per_gb"] = (after[1] - before[1]) / gigabytes
    finally:
        running.stop()


def run(paths: list[Any], servers: Servers, rounds: int, d: Durations) -> Results:
    results = Results()
    t0 = time.monotonic()
    for index in range(rounds):
        order = paths[index % len(paths) :] + paths[: index % len(paths)]
        figures: dict[str, dict[str, float]] = {}
        for path in order:
            log(f"round {index + 1}/{rounds}: {path.key}")
            try:
                measure_path(path, servers, d, figures.setdefault(path.key, {}))
            except Exception as exc:  # noqa: BLE001 - a failed path is reported, not fatal
                results.errors.append(f"round {index + 1} {path.key}: {exc}")
                log(f"  failed: {exc}")
        results.rounds.append(figures)

    for path in paths:
        if path.key == "direct" or getattr(path, "variant", False):
            continue
        log(f"memory: {path.key}")
        for count in (1, d.memory_tunnels):
            try:
                running = path.start(servers, copies=count, pg_only=True)
            except Exception as exc:  # noqa: BLE001
                results.errors.append(f"memory {path.key} x{count}: {exc}")
                continue
            try:
                rss, pss = measure.memory_mib(running.pids)
                entry = results.memory.setdefault(path.key, {})
                entry[f"rss_{count}"], entry[f"pss_{count}"] = rss, pss
                if path.key == "agent" and count == d.memory_tunnels:
                    results.status_json_ms = path.status_json_ms(d.status_samples)
            finally:
                running.stop()
        if path.key == "agent" and d.many_tunnels > d.memory_tunnels:
            measure_many(path, servers, d, results)
    results.elapsed_s = time.monotonic() - t0
    return results


def measure_many(path: Any, servers: Servers, d: Durations, results: Results) -> None:
    """`status --json` and the agent's RSS with many tunnels up (one key, one bastion)."""
    log(f"status and memory with {d.many_tunnels} tunnels: {path.key}")
    try:
        running = path.start(servers, copies=d.many_tunnels, pg_only=True)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        results.errors.append(f"{path.key} x{d.many_tunnels}: {exc}")
        return
    try:
        rss, pss = measure.memory_mib(running.pids)
        samples = path.status_json_samples(d.status_samples)
        results.many = {"tunnels": d.many_tunnels, "rss": rss, "pss": pss,
                        "status_json_ms": [wall for wall, _ in samples],
                        "status_cpu_ms": [cpu for _, cpu in samples]}  # fmt: skip
    finally:
        running.stop()


def summary(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def paired_ratios(results: Results, path: str, figure: str, base: str = "openssh") -> list[float]:
    ratios = []
    for figures in results.rounds:
        a, b = figures.get(path, {}).get(figure), figures.get(base, {}).get(figure)
        if a is not None and b:
            ratios.append(a / b)
    return ratios
