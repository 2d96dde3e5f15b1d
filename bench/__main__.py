"""`python -m bench [--rounds N] [--quick] [--paths a,b] [--output FILE]`."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path

from bench import paths as bp
from bench.report import machine, render
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
        text = render(
            Results(**saved["results"]), [tuple(p) for p in saved["paths"]],
            Durations(**saved["durations"]), rounds=saved["rounds"], quick=saved["quick"],
            notes="" if saved["quick"] or not notes_file.exists() else notes_file.read_text(),
            machine_info=saved["machine"], when=saved["when"], command=saved.get("command", ""),
        )  # fmt: skip
        print(text)
        if not args.no_write:
            args.output.write_text(text)
        return 0

    durations = (
        QUICK if args.quick else Durations(args.pgbench_seconds, None, None, args.bulk_seconds)
    )
    rounds = 1 if args.quick and args.rounds == 3 else args.rounds
    paths = [make_path(n.strip()) for n in args.paths.split(",") if n.strip()]
    if "openssh" not in [p.key for p in paths]:  # type: ignore[attr-defined]
        paths.insert(0, bp.OpenSsh())  # the baseline of every ratio
    notes = notes_file.read_text() if notes_file.exists() and not args.quick else ""
    machine_info = machine()
    command = " ".join(argv if argv is not None else sys.argv[1:])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

    log("starting sshd, PostgreSQL, MariaDB, iperf3 ...")
    with start_servers() as servers:
        agents = [p for p in paths if isinstance(p, bp.Agent)]
        try:
            for agent in agents:
                log(f"setting up a tunnel-tui home and its agent ({agent.key}) ...")
                agent.setup(servers, extra_pg=durations.memory_tunnels - 1)
            results = run(paths, servers, rounds, durations)
        finally:
            for agent in agents:
                agent.close()
    log("servers stopped")
    path_info = [(p.key, p.label) for p in paths]  # type: ignore[attr-defined]
    text = render(
        results, path_info, durations, rounds=rounds, quick=args.quick, notes=notes,
        machine_info=machine_info, when=when, command=command,
    )  # fmt: skip
    print(text)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        raw = {
            "results": dataclasses.asdict(results), "paths": path_info,
            "durations": dataclasses.asdict(durations), "rounds": rounds, "quick": args.quick,
            "machine": machine_info, "when": when, "command": command,
        }  # fmt: skip
        raw_file.write_text(json.dumps(raw, indent=1))
        log(f"written to {args.output} and {raw_file.name}")
    return 1 if results.errors and not results.rounds else 0


if __name__ == "__main__":
    sys.exit(main())
