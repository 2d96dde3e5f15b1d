"""The benchmark runs end to end (`python -m bench --quick`, both profiles): every
path brings its forwards up, on loopback and over the delayed link, and every figure
is produced. A benchmark, not a test of speed: no
thresholds on any number."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.binaries import require_binary

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["direct", "openssh", "sshtunnel", "engine", "agent"]


def _require_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        message = f"python package {name} missing: pip install -e '.[bench]'"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.mark.slow
@pytest.mark.timeout(175)
def test_bench_quick_runs_every_path(tmp_path: Path) -> None:
    for binary, package in [
        ("iperf3", "iperf3"),
        ("pgbench", "postgresql-contrib"),
        ("ssh", "openssh-client"),
        ("/usr/sbin/sshd", "openssh-server"),
    ]:
        require_binary(binary, package)
    for module in ("sshtunnel", "paramiko", "psutil"):
        _require_module(module)
    output = tmp_path / "BENCHMARKS.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNNEL_TUI_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=165, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = output.read_text()
    assert proc.stdout.startswith("# tunnel-tui benchmarks")  # printed as well as written
    assert "## Failures" not in text, text[text.find("## Failures") :]
    for heading in ("## Machine", "## Medians", "## Paired ratios", "## Memory"):
        assert heading in text
    medians = text.split("## Medians")[1].split("## Paired")[0]
    header = next(line for line in medians.splitlines() if line.startswith("| figure"))
    assert header.count("|") == len(PATHS) + 2, header
    for figure in (
        "pgbench -S c1 tps",
        "pgbench -S c8 tps",
        "bulk up MB/s",
        "bulk down MB/s",
        "MariaDB new conn ms",
        "start → first SELECT 1 ms",
    ):
        row = next(line for line in medians.splitlines() if line.startswith(f"| {figure}"))
        assert "—" not in row, row  # every path produced this figure
    assert "`tunnel-tui status --json`" in text
    # The long-haul profile (default `all`): every path over the delayed link.
    long = text.split("## Long-haul link")[1]
    table = long.split("### 10 ms each way")[1].split("Paired ratios")[0]
    for figure in ("COPY … TO STDOUT download MB/s", "COPY … FROM STDIN upload MB/s",
                   "new connection + SELECT 1 ms"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {figure}"))
        assert "—" not in row, row
