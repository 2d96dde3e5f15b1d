"""Keyring backends and the agent socket end to end (issue 10 items 17, 18): the CLI
never stores a secret in a fail/null/plaintext backend, a locked or hung Secret Service
gives an error within the timeout, and the agent refuses other users and survives bad
requests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.fixtures.binaries import require_binary
from tests.fixtures.canary import assert_no_hits, make_canaries, scan_tree
from tests.reliability.helpers import REPO
from tunnel_tui.agent import protocol
from tunnel_tui.core.paths import config_path

DB = "postgresql://app@db.internal:5432/appdb"
SSH = "ssh://tunnel@bastion.example.com:22"
KEYRING_TIMEOUT = 5.0  # core.keyring_backend.DEFAULT_TIMEOUT


def _add(
    env: dict[str, str], password: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", "--debug", "add", "prod", "--db", DB, "--ssh", SSH,
         "--db-password-stdin"],
        input=password + "\n", capture_output=True, text=True, env=env, timeout=timeout,
        cwd=REPO,
    )


def _assert_refused_cleanly(out: subprocess.CompletedProcess[str], isolated_env, password: str,
                            elapsed: float) -> None:
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr[-2000:]
    assert "keyring" in out.stderr.lower() or "vault" in out.stderr.lower()
    assert elapsed < KEYRING_TIMEOUT * 2 + 5, elapsed
    assert not config_path(isolated_env.home).exists()  # nothing half-added
    # Nothing written in plaintext anywhere we can see (keyrings.alt would use XDG_DATA_HOME).
    canaries = make_canaries(passwords=[("db password", password)])
    assert_no_hits(scan_tree(isolated_env.root, canaries))


@pytest.mark.parametrize(
    "backend",
    [None, "keyring.backends.fail.Keyring", "keyring.backends.null.Keyring",
     "keyrings.alt.file.PlaintextKeyring", "keyrings.alt.file.EncryptedKeyring"],
)
def test_unusable_keyring_backends_are_never_used_silently(isolated_env, backend):
    try:
        import keyrings.alt  # noqa: F401  (a dev dependency: refusing it is the point)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("keyrings.alt is missing: pip install -e '.[dev]'", pytrace=False)
        pytest.skip("keyrings.alt is missing: pip install -e '.[dev]'")
    env = dict(os.environ)  # isolated: no D-Bus session at all
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    if backend:
        env["PYTHON_KEYRING_BACKEND"] = backend
    password = f"canary-{os.urandom(6).hex()}"
    t0 = time.monotonic()
    out = _add(env, password)
    _assert_refused_cleanly(out, isolated_env, password, time.monotonic() - t0)


def test_locked_secret_service_errors_within_the_timeout(isolated_env, locked_secret_service):
    password = f"canary-{os.urandom(6).hex()}"
    t0 = time.monotonic()
    out = _add(dict(locked_secret_service.env), password)
    _assert_refused_cleanly(out, isolated_env, password, time.monotonic() - t0)
    assert "lock" in out.stderr.lower(), out.stderr


@pytest.mark.slow
def test_hung_secret_service_errors_within_the_timeout_never_hangs(
    isolated_env, locked_secret_service
):
    """The keyring daemon stopped (a frozen session, a prompt nobody answers): every call
    must time out, not block the CLI forever."""
    gkd = locked_secret_service.daemon.gkd
    assert gkd is not None
    os.kill(gkd.pid, signal.SIGSTOP)
    try:
        password = f"canary-{os.urandom(6).hex()}"
        t0 = time.monotonic()
        out = _add(dict(locked_secret_service.env), password, timeout=KEYRING_TIMEOUT * 4 + 10)
        _assert_refused_cleanly(out, isolated_env, password, time.monotonic() - t0)
    finally:
        os.kill(gkd.pid, signal.SIGCONT)


# -- 18. the agent socket -----------------------------------------------------------------

OTHER_UID = 65534  # nobody

CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"connect_error": exc.errno}))
    sys.exit(0)
try:
    s.sendall(b'{"v": 2, "id": 1, "op": "status"}\\n')
except OSError:
    pass  # the agent may answer and hang up before reading anything
s.settimeout(5)
data = b""
while not data.endswith(b"\\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps({"reply": data.decode()}))
"""


def _as_other_user(sock_path: str) -> dict[str, object]:
    # The system Python: another user may not be able to run our venv's interpreter.
    python = require_binary("/usr/bin/python3", "python3")
    out = subprocess.run([python, "-c", CLIENT, sock_path], capture_output=True,
                         text=True, timeout=30, user=OTHER_UID, group=OTHER_UID,
                         extra_groups=[], cwd="/")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _ping(path: str) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b'{"v": 2, "id": 9, "op": "ping"}\n')
        return json.loads(s.makefile("rb").readline())


def test_agent_socket_refuses_another_uid_at_both_layers(agent_process, isolated_env):
    path = str(agent_process.socket)
    # Layer 1: the 0700 directories stop another user before the socket is reached.
    assert _as_other_user(path) == {"connect_error": 13}  # EACCES
    # Layer 2: loosened on purpose, the agent itself checks the peer's uid.
    loosened = []
    directory = agent_process.socket.parent
    while directory != isolated_env.root.parent:
        loosened.append((directory, directory.stat().st_mode))
        os.chmod(directory, 0o711)
        directory = directory.parent
    sock_mode = agent_process.socket.stat().st_mode
    os.chmod(path, 0o777)
    try:
        result = _as_other_user(path)
    finally:
        os.chmod(path, sock_mode)
        for directory, mode in loosened:
            os.chmod(directory, mode)
    reply = json.loads(str(result["reply"]))
    assert reply["ok"] is False and reply["error"]["code"] == protocol.FORBIDDEN, reply
    assert "tunnels" not in reply
    assert _ping(path)["ok"] is True  # and it still serves its owner


BAD_REQUESTS: list[bytes] = [
    b"not json\n",
    b"[1, 2, 3]\n",
    b'{"v": 2}\n',
    b'{"v": 2, "id": 1, "op": "rm -rf"}\n',
    b'{"v": 99, "id": 1, "op": "status"}\n',
    b'{"v": 2, "id": 1, "op": "up"}\n',  # missing argument
    b'{"v": 2, "id": 1, "op": "up", "name": ["x"]}\n',
    b'{"v": 2, "id": 1, "op": "down", "name": "no-such-tunnel"}\n',
    b"\xff\xfe\x00garbage\n",
    b'{"v": 2, "id": 1, "op": "status", "name": "' + b"a" * 60000 + b'"}\n',
]


def test_agent_answers_malformed_requests_with_errors_and_keeps_serving(agent_process):
    path = str(agent_process.socket)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        replies = s.makefile("rb")
        for bad in BAD_REQUESTS:  # all on one connection: each gets its own error reply
            s.sendall(bad)
            reply = json.loads(replies.readline())
            assert reply["ok"] is False and reply["error"]["message"], (bad[:60], reply)
            assert "Traceback" not in json.dumps(reply)
        s.sendall(b'{"v": 2, "id": 2, "op": "ping"}\n')
        assert json.loads(replies.readline())["ok"] is True
    # Oversized: an error reply, the connection closed, the agent alive.
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        try:
            s.sendall(b'{"v": 2, "op": "status", "pad": "' + b"x" * (4 << 20) + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may hang up before reading everything; the reply is what matters
        reply = json.loads(s.makefile("rb").readline())
        assert reply["ok"] is False and reply["error"]["code"] == protocol.TOO_LARGE
    # A client that sends half a line and vanishes, and many at once, cost nothing.
    for _ in range(50):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(b'{"v": 2, "op": "sta')
    assert _ping(path)["ok"] is True
    assert agent_process.process.poll() is None
    assert "Traceback" not in agent_process.log_text()
