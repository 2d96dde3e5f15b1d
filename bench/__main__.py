"""`python -m bench [--profile lan|long-haul|all] [--rounds N] [--quick] [--paths a,b]`.

`lan` is everything on loopback; `long-haul` the same paths over a delayed link
(bench/longhaul.py, 25 and 10 ms each way); `all` (the default, `make bench`) both,
in one run, into one Markdown file. A single profile keeps the other profile's last
results (from the JSON next to the output) in the file it writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
from pathlib import Path

from bench import longhaul as lh
from bench import paths as bp
from bench.report import machine, render, render_longhaul
from bench.runner import QUICK, Durations, Results, log, run
from bench.servers import start_servers

ROOT = Path(__file__).resolve().parent.parent
ALL_PATHS = ["direct", "openssh", "sshtunnel", "engine", "agent"]
VARIANTS = {
    # Experiments: one switch of EngineSettings (or the agent's loop) each.
    "agent-asyncio": lambda: bp.Agent(
        uvloop=False, key="agent-asyncio", label="agent with TUNNEL_TUI_UVLOOP=0"
    ),
    "engine-chacha": lambda: bp.Engine(
        {"encryption_algs": ["chacha20-poly1305@openssh.com"]},
        key="engine-chacha",
        label="engine, chacha20 instead of aes128-gcm",
    ),
    "engine-asyncio": lambda: bp.Engine(
        uvloop=False, key="engine-asyncio", label="engine, asyncio loop (no uvloop)"
    ),
    "engine-nocork": lambda: bp.Engine(
        {"cork_writes": False},
        key="engine-nocork",
        label="engine, cork_writes off (a send() per asyncssh write)",
    ),
    "engine-coalesce": lambda: bp.Engine(
        {"coalesce_writes": True},
        key="engine-coalesce",
        label="engine, coalesce_writes on (a send() per loop iteration)",
    ),
    "engine-noquickack": lambda: bp.Engine(
        {"quickack": False}, key="engine-noquickack", label="engine, no TCP_QUICKACK"
    ),
    "engine-win32": lambda: bp.Engine(
        {"window": 32 * 1024 * 1024},
        key="engine-win32",
        label="engine, fixed 32 MiB window",
    ),
    "engine-fixedwin": lambda: bp.Engine(
        {"max_window": 8 * 1024 * 1024},
        key="engine-fixedwin",
        label="engine, fixed 8 MiB window (no growth with the link)",
    ),
    "engine-ignore": lambda: bp.Engine(
        {"skip_aead_ignore": False},
        key="engine-ignore",
        label="engine, asyncssh's per-packet IGNORE kept (shim off)",
    ),
    "engine-workers2": lambda: bp.Engine(
        workers=2,
        key="engine-workers2",
        label="engine, 2 worker processes (SO_REUSEPORT, an SSH connection each)",
    ),
    "engine-smallwin": lambda: bp.Engine(
        {"window": 2 * 1024 * 1024, "max_pktsize": 32768},
        key="engine-smallwin",
        label="engine, asyncssh's default window/packet",
    ),
}


def make_path(name: str) -> object:
    simple = {
        "direct": bp.Direct,
        "openssh": bp.OpenSsh,
        "sshtunnel": bp.Sshtunnel,
        "engine": bp.Engine,
        "agent": bp.Agent,
    }
    if name in simple:
        return simple[name]()
    if name in VARIANTS:
        return VARIANTS[name]()
    raise SystemExit(f"unknown path {name!r}; choose from {', '.join([*simple, *VARIANTS])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--profile", choices=["lan", "long-haul", "all"], default="all",
        help="lan: loopback; long-haul: over the delay proxy; all (default): both",
    )
    parser.add_argument(
        "--delays", default=",".join(f"{d:g}" for d in lh.DELAYS_MS),
        help="long-haul: one-way delays in ms, comma-separated",
    )
    parser.add_argument(
        "--longhaul-paths", default=None,
        help="long-haul: comma-separated paths (default: those of --paths)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny durations (smoke test)")
    parser.add_argument(
        "--paths", default=",".join(ALL_PATHS), help=f"comma-separated; also: {', '.join(VARIANTS)}"
    )
    parser.add_argument("--pgbench-seconds", type=float, default=5.0)
    parser.add_argument("--bulk-seconds", type=float, default=3.0)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="re-render the Markdown from a saved results file (with the current NOTES.md)",
    )
    args = parser.parse_args(argv)
    notes_file = Path(__file__).with_name("NOTES.md")
    raw_file = args.output.with_suffix(".json")

    if args.render:
        saved = json.loads(args.render.read_text())
        text = render_saved(saved, notes_file)
        print(text)
        if not args.no_write:
            args.output.write_text(text)
        return 0

    durations = (
        QUICK if args.quick else Durations(args.pgbench_seconds, None, None, args.bulk_seconds)
    )
    rounds = 1 if args.quick and args.rounds == 3 else args.rounds
    names = [n.strip() for n in args.paths.split(",") if n.strip()]
    lh_names = (
        [n.strip() for n in args.longhaul_paths.split(",") if n.strip()]
        if args.longhaul_paths else names
    )
    for name in {*names, *lh_names}:
        make_path(name)  # unknown names fail before anything starts
    try:
        delays = tuple(float(d) for d in args.delays.split(",") if d.strip())
    except ValueError:
        delays = ()
    if not delays or min(delays) <= 0:
        parser.error(f"--delays {args.delays!r}: give one-way delays in ms above 0, e.g. 25,10")
    machine_info = machine()
    command = " ".join(argv if argv is not None else sys.argv[1:])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    saved: dict[str, object] = {}
    if args.profile != "all" and raw_file.exists() and not args.no_write:
        saved = json.loads(raw_file.read_text())  # keep the other profile's results
    failed = False

    log("starting sshd, PostgreSQL, MariaDB, iperf3 ...")
    with start_servers() as servers:
        if args.profile in ("lan", "all"):
            paths = [make_path(n) for n in names]
            if "openssh" not in [p.key for p in paths]:  # type: ignore[attr-defined]
                paths.insert(0, bp.OpenSsh())  # the baseline of every ratio
            agents = [p for p in paths if isinstance(p, bp.Agent)]
            try:
                for agent in agents:
                    log(f"setting up a tunnel-tui home and its agent ({agent.key}) ...")
                    agent.setup(
                        servers,
                        extra_pg=max(durations.memory_tunnels, durations.many_tunnels) - 1,
                    )
                results = run(paths, servers, rounds, durations)
            finally:
                for agent in agents:
                    agent.close()
            failed |= bool(results.errors and not results.rounds)
            machine_info = {**machine_info, "load at end": _load()}
            saved.update({
                "results": dataclasses.asdict(results),
                "paths": [(p.key, p.label) for p in paths],  # type: ignore[attr-defined]
                "durations": dataclasses.asdict(durations), "rounds": rounds,
                "quick": args.quick, "machine": machine_info, "when": when, "command": command,
            })  # fmt: skip
        if args.profile in ("long-haul", "all"):
            config = lh.QUICK_LONGHAUL if args.quick else lh.LongHaul(delays_ms=delays)
            saved["longhaul"] = run_longhaul_profile(
                servers, lh_names, config, rounds, args.quick, machine_info, command
            )
    log("servers stopped")
    text = render_saved(saved, notes_file)
    print(text)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        raw_file.write_text(json.dumps(saved, indent=1))
        log(f"written to {args.output} and {raw_file.name}")
    return 1 if failed else 0


def run_longhaul_profile(
    servers: object, names: list[str], config: lh.LongHaul, rounds: int, quick: bool,
    machine_info: dict[str, str], command: str,
) -> dict[str, object]:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine_info = {**machine_info, "load at start": _load()}
    log("long-haul: bulk table, delay proxies ...")
    lh.create_bulk_table(servers)  # type: ignore[arg-type]
    agents: list[bp.Agent] = []
    with lh.delay_links(servers, config) as links:  # type: ignore[arg-type]
        paths_for: dict[float, list[object]] = {}
        try:
            for link in links:
                paths: list[object] = []
                for name in names:
                    if name == "direct":
                        paths.append(lh.LinkDirect(link))
                        continue
                    path = make_path(name)
                    if isinstance(path, bp.Agent):
                        path.home_suffix = f"-lh{link.delay_ms:g}"
                        log(f"setting up an agent for the {link.delay_ms:g} ms link ...")
                        path.setup(link.servers, extra_pg=0)
                        agents.append(path)
                    paths.append(path)
                if "openssh" not in names:
                    paths.insert(0, bp.OpenSsh())
                paths_for[link.delay_ms] = paths
            results = lh.run_longhaul(paths_for, links, rounds, config)
            machine_info = {**machine_info, "load at end": _load()}
        finally:
            for agent in agents:
                agent.close()
    first = next(iter(paths_for.values()))
    return {
        "results": dataclasses.asdict(results),
        "paths": [(p.key, p.label) for p in first],  # type: ignore[attr-defined]
        "delays_ms": list(config.delays_ms), "bulk_bytes": config.bulk_bytes,
        "link_window": config.link_window, "rounds": rounds, "quick": quick,
        "machine": machine_info, "when": when, "command": command,
    }  # fmt: skip


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def render_saved(saved: dict[str, object], notes_file: Path) -> str:
    """Both profiles' sections (whichever are in `saved`), then the hand-written notes."""
    parts: list[str] = []
    quick = bool(saved.get("quick"))
    if "results" in saved:
        parts.append(render(
            Results(**saved["results"]), [tuple(p) for p in saved["paths"]],  # type: ignore[arg-type]
            Durations(**saved["durations"]), rounds=saved["rounds"], quick=quick,  # type: ignore[arg-type]
            notes="", machine_info=saved["machine"], when=saved["when"],  # type: ignore[arg-type]
            command=saved.get("command", ""),  # type: ignore[arg-type]
        ))  # fmt: skip
    else:
        parts.append("# tunnel-tui benchmarks\n")
    long = saved.get("longhaul")
    if isinstance(long, dict):
        quick = quick or bool(long.get("quick"))
        parts.append(render_longhaul(
            Results(**long["results"]), [tuple(p) for p in long["paths"]],
            long["delays_ms"], rounds=long["rounds"], bulk_bytes=long["bulk_bytes"],
            link_window=long["link_window"], machine_info=long["machine"],
            when=long["when"], command=long["command"], quick=bool(long.get("quick")),
        ))  # fmt: skip
    if notes_file.exists() and not quick:
        parts.append(notes_file.read_text())
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


if __name__ == "__main__":
    sys.exit(main())
