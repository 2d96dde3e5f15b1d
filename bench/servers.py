"""The servers the benchmark runs against, all on 127.0.0.1 and all private.

sshd, PostgreSQL and MariaDB reuse the test harness (tests/fixtures): a throwaway
bastion user (never root, nothing under /root/.ssh), private database clusters on
free ports. iperf3 is the bulk source/sink: written in C, so it is not the
bottleneck at the rates a single SSH stream reaches.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.fixtures import mariadb as my_fx
from tests.fixtures import postgres as pg_fx
from tests.fixtures import sshd as sshd_fx
from tests.fixtures.ports import free_port

HOST = "127.0.0.1"


@dataclass
class Servers:
    sshd: sshd_fx.SshdServer
    pg: pg_fx.PostgresServer
    my: my_fx.MariadbServer
    iperf_port: int
    key_path: Path  # the bench client's private key (0600)
    known_hosts_path: Path  # OpenSSH known_hosts trusting the bench sshd
    pgpass_path: Path  # libpq password file for pgbench (never argv/env)
    workdir: Path

    @property
    def targets(self) -> dict[str, int]:
        """Forwarded services: name -> port on the 'database host' (loopback)."""
        return {"pg": self.pg.port, "my": self.my.port, "iperf": self.iperf_port}

    def pg_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PGPASSFILE"] = str(self.pgpass_path)
        env.pop("PGPASSWORD", None)
        return env


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tt-bench", "-f", str(path)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return " ".join(path.with_name(path.name + ".pub").read_text().split()[:2])


def _init_pgbench(pg: pg_fx.PostgresServer, bindir: Path, scale: int) -> None:
    sock = ["-h", str(pg.socket_dir), "-p", str(pg.port), "-U", "postgres"]
    subprocess.run(
        [str(bindir / "pgbench"), "-i", "-q", "-s", str(scale), *sock, pg.database],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    subprocess.run(
        [str(bindir / "psql"), "-X", "-q", *sock, "-d", pg.database, "-c",
         f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {pg.user}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _listening(port: int) -> bool:
    return any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in psutil.net_connections(kind="tcp4")
    )


@contextmanager
def iperf3_server() -> Iterator[int]:
    binary = shutil.which("iperf3")
    if binary is None:
        raise RuntimeError("iperf3 not found: install it with `apt-get install iperf3`")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-s", "-B", HOST, "-p", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Not a probe connection: iperf3 serves one client at a time and would wait
        # for the probe's test parameters. Look for the listening socket instead.
        if not wait_until(lambda: _listening(port), timeout=10):
            raise RuntimeError("iperf3 did not start listening")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def start_servers(pgbench_scale: int = 1) -> Iterator[Servers]:
    """Everything up; everything stopped (by PID) and removed on exit."""
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="tt-bench-"))
        stack.callback(shutil.rmtree, workdir, True)
        os.chmod(workdir, 0o700)

        sshd = sshd_fx.start_sshd({"LogLevel": "INFO"})
        stack.callback(sshd.teardown)
        key_path = workdir / "id_ed25519"
        public_line = _keygen(key_path)
        sshd.authorize(public_line)
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(sshd.known_hosts_line() + "\n")

        pg_template = pg_fx.make_template()
        stack.callback(shutil.rmtree, pg_template.root, True)
        pg = pg_fx.PostgresServer(pg_template)
        stack.callback(pg.close)
        pg.start()
        _init_pgbench(pg, pg_template.bindir, pgbench_scale)
        pgpass = workdir / "pgpass"
        pgpass.write_text(f"*:*:*:{pg.user}:{pg.password}\n")
        os.chmod(pgpass, 0o600)

        my_template = my_fx.make_template()
        stack.callback(shutil.rmtree, my_template.root, True)
        my = my_fx.MariadbServer(my_template)
        stack.callback(my.close)
        my.start()

        iperf_port = stack.enter_context(iperf3_server())
        yield Servers(sshd, pg, my, iperf_port, key_path, known_hosts, pgpass, workdir)


def wait_until(predicate, timeout: float, interval: float = 0.002) -> bool:  # type: ignore[no-untyped-def]
    """Poll `predicate` until true or `timeout` seconds passed (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
