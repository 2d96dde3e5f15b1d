"""Finding 3 (issue 14): the agent client talks only to an agent of its own uid.

The client used to lstat the socket and then connect (a race: another user renaming
its own socket in and out of place received the vault passphrase), and never asked
the kernel who answered. Now it requires the peer's uid (SO_PEERCRED) to be ours,
and every directory on the way to the socket (the /tmp fallback too) to be ours and
0700. The impostor here is a real process of another user (`nobody`, via setpriv).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.security_helpers import Impostor, run_cli
from tunnel_tui.agent.address import AgentSocketForeign, ensure_socket_dir, resolve
from tunnel_tui.agent.client import AgentClient, AsyncAgentClient
from tunnel_tui.core import paths

OTHER = pwd.getpwnam("nobody")


@pytest.fixture
def impostor() -> Iterator[Impostor]:
    """The other user's fake agent, listening in its own directory under /tmp."""
    lair = Path(tempfile.mkdtemp(prefix="tt-lair-", dir="/tmp"))
    os.chown(lair, OTHER.pw_uid, OTHER.pw_gid)
    impostor = Impostor(str(lair / "s"), OTHER.pw_uid, OTHER.pw_gid)
    try:
        yield impostor
    finally:
        impostor.stop()
        shutil.rmtree(lair, ignore_errors=True)


def _other_users_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    os.chown(path, OTHER.pw_uid, OTHER.pw_gid)
    return path


def _swap_in(impostor: Impostor, target: Path) -> None:
    """What a winning rename race leaves: a socket the lstat check accepts (ours, not a
    link) at the agent's path, answered by the other user's process."""
    os.chown(impostor.path, os.getuid(), os.getgid())
    os.rename(impostor.path, target)


def test_client_refuses_an_agent_of_another_uid(isolated_env, impostor):
    address = resolve(isolated_env.home)
    ensure_socket_dir(address)  # our run dir, 0700, as the agent makes it
    _swap_in(impostor, address.socket)

    with pytest.raises(AgentSocketForeign, match=f"uid {OTHER.pw_uid}"):
        AgentClient(isolated_env.home).call("vault-status")
    assert impostor.received() == 0  # closed before a single byte was sent

    with pytest.raises(AgentSocketForeign, match="not by you"):
        asyncio.run(AsyncAgentClient(isolated_env.home).call("vault-status"))
    assert impostor.received() == 0

    out = run_cli("status")
    assert out.returncode == 1 and "not by you" in out.stderr, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert impostor.received() == 0


@pytest.fixture
def deep_home(isolated_env, monkeypatch) -> Iterator[Path]:
    """A home whose socket path is too long: the agent socket goes under /tmp."""
    home = isolated_env.root / ("d" * 100)
    home.mkdir(mode=0o700)
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    address = resolve(home)
    assert address.is_fallback
    try:
        yield home
    finally:
        shutil.rmtree(address.socket.parent, ignore_errors=True)  # this home's own dir


def test_fallback_dir_of_another_user_is_refused(deep_home, impostor):
    address = resolve(deep_home)
    base = address.socket.parent.parent
    if not base.exists():  # /tmp/tunnel-tui-<uid> is shared by all our homes: ours, 0700
        base.mkdir(mode=0o700)
    _other_users_dir(address.socket.parent)  # planted before our agent ever ran
    _swap_in(impostor, address.socket)  # even a socket that looks ours

    with pytest.raises(AgentSocketForeign, match="belongs to another user"):
        AgentClient(deep_home).call("vault-status")
    with pytest.raises(AgentSocketForeign, match="belongs to another user"):
        ensure_socket_dir(address)  # the agent will not start there either
    assert os.stat(address.socket.parent).st_uid == OTHER.pw_uid  # and chmod-ed nothing
    assert "received" not in impostor.stop()  # never even connected to


def test_fallback_dir_open_to_others_is_refused(deep_home):
    address = resolve(deep_home)
    ensure_socket_dir(address)
    os.chmod(address.socket.parent, 0o777)
    with pytest.raises(AgentSocketForeign, match="open to other users"):
        AgentClient(deep_home).call("ping")
    with pytest.raises(AgentSocketForeign, match="open to other users"):
        ensure_socket_dir(address)
