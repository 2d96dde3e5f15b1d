"""Set up and tear down the sandbox: throwaway home, vault with a random passphrase,
the in-process bastion, two connections to this machine's databases, an agent.

Nothing outside the temporary directory is touched: TUNNEL_TUI_HOME points into it and
TUNNEL_TUI_SECRETS=vault keeps the user's keyring out of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets as random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tunnel_tui.core import paths
from tunnel_tui.core.catalog import Catalog, GenerateKey
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.known_hosts import KnownHosts
from tunnel_tui.core.secret import Secret
from tunnel_tui.demo.bastion import SandboxBastion
from tunnel_tui.demo.signals import SIGNALS, ending_on_signals

# (connection name, database URL as the bastion sees it) — the databases of this machine.
DATABASES = [
    ("sandbox-pg", "postgresql://postgres@127.0.0.1:5432/postgres"),
    ("sandbox-mariadb", "mysql://root@127.0.0.1:3306/mysql"),
]
AGENT_START_SECONDS = 15.0


@dataclass
class Sandbox:
    root: Path
    home: Path
    passphrase: Secret = field(repr=False)
    bastion: SandboxBastion
    agent: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    @property
    def greeting(self) -> str:
        return "\n".join(self.notes)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.3):
        return True
    return False


def create() -> Sandbox:
    saved = {name: os.environ.get(name) for name in (paths.HOME_ENV, "TUNNEL_TUI_SECRETS")}
    root: Path | None = None
    sandbox: Sandbox | None = None
    # A hangup or SIGTERM ends the set-up with a SystemExit (demo/signals.py); held
    # until `root` is known, it is handled inside the try below, which removes it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        root = Path(tempfile.mkdtemp(prefix="tunnel-tui-sandbox-"))
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        home = paths.ensure_private_dir(root / "home")
        os.environ[paths.HOME_ENV] = str(home)
        os.environ["TUNNEL_TUI_SECRETS"] = "vault"
        # A random passphrase that lives only in memory (this process and the agent's).
        passphrase = Secret(random.token_urlsafe(32))
        bastion = SandboxBastion(root / "bastion-home")
        sandbox = Sandbox(root, home, passphrase, bastion, _saved_env=saved)
        _populate(sandbox)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if sandbox is not None:
            close(sandbox)
        elif root is not None:
            _remove(root, saved)
        raise
    return sandbox


def _populate(sandbox: Sandbox) -> None:
    from tunnel_tui.core import secrets

    secrets.open_store(sandbox.home, vault_passphrase=sandbox.passphrase)  # creates the vault
    bastion = sandbox.bastion
    bastion.start()
    KnownHosts(paths.known_hosts_path(sandbox.home)).add(
        bastion.host, bastion.port, bastion.host_public_line
    )
    sandbox.notes.append(
        f"Sandbox bastion {bastion.user}@{bastion.host}:{bastion.port}, host key "
        f"{bastion.host_fingerprint} (trusted for this sandbox only). A connection you "
        f"add logs in once its key's line is in {bastion.authorized_keys} (read at every "
        "login, like a real bastion's)."
    )
    catalog = Catalog(sandbox.home, vault_passphrase=sandbox.passphrase)
    ssh_url = f"ssh://{bastion.user}@{bastion.host}:{bastion.port}"
    for name, db_url in DATABASES:
        result = catalog.add(name, db_url, ssh_url, key=GenerateKey())
        bastion.authorize(f"{result.key.public_key} tunnel-tui:{result.key.name}")
        port = result.connection.database.port
        if not _answers(port):
            sandbox.notes.append(f"No database answers on 127.0.0.1:{port}: validate {name} "
                                 "to see the failing step and its hint.")
    _start_agent(sandbox)


def _start_agent(sandbox: Sandbox) -> None:
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning, start_agent

    process = start_agent(sandbox.home)  # inherits TUNNEL_TUI_HOME / TUNNEL_TUI_SECRETS
    sandbox.agent = process  # from here on close() stops it, also if start-up fails
    client = AgentClient(sandbox.home)
    deadline = time.monotonic() + AGENT_START_SECONDS
    while True:
        try:
            client.ping()
            break
        except AgentNotRunning:
            if process.poll() is not None or time.monotonic() > deadline:
                raise TunnelTuiError(
                    "the sandbox agent did not start",
                    hint=f"see {paths.log_dir(sandbox.home)}",
                ) from None
            time.sleep(0.05)  # sync start-up, bounded by the deadline
    client.vault_unlock(sandbox.passphrase)


def close(sandbox: Sandbox) -> None:
    """Stop the agent we started (by its PID), the bastion, and remove everything."""
    if sandbox.agent is not None:
        from tunnel_tui.agent.client import AgentClient

        try:
            AgentClient(sandbox.home).shutdown()
        except (TunnelTuiError, OSError):
            sandbox.agent.terminate()  # not answering (yet): by its PID
        try:
            sandbox.agent.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sandbox.agent.kill()
            sandbox.agent.wait(timeout=5)
        sandbox.agent = None
    sandbox.bastion.close()
    _remove(sandbox.root, sandbox._saved_env)


def _remove(root: Path, saved_env: dict[str, str | None]) -> None:
    """The temporary directory goes; the caller's environment comes back."""
    shutil.rmtree(root, ignore_errors=True)
    for name, value in saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    box = create()
    try:
        yield box
    finally:
        close(box)


def run_demo() -> None:
    """`tunnel-tui demo`: the app, inside a sandbox that disappears at exit, also
    when its terminal closes (SIGHUP) or it is terminated (SIGTERM)."""
    from tunnel_tui.ui.app import TunnelTuiApp
    from tunnel_tui.ui.services import RealServices

    with ending_on_signals() as ending:
        with contextlib.suppress(OSError):  # a terminal closed already
            print("Preparing the sandbox (bastion, keys, agent)…", flush=True)
        with sandbox() as box:
            services = RealServices(box.home, vault_passphrase=box.passphrase)
            app = TunnelTuiApp(services, greeting=box.greeting, title="tunnel-tui sandbox",
                               in_sandbox=True)
            ending.app = app
            try:
                app.run()
            finally:
                ending.app = None
                ending.cleaning_up = True  # from here on a signal waits for the clean-up
    if ending.signalled is not None:
        raise SystemExit(128 + ending.signalled)
