"""Choosing the keyring backend, each case in a fresh subprocess (keyring caches its
choice per process): no D-Bus, refused backends, a locked keyring, a keyring that
never answers, and the real Secret Service."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.env import IsolatedEnv
from tests.fixtures.secret_service import SecretServiceHandle

CANARY = "canary-a61c0f42e9"

SCRIPT = r"""
import json, logging, sys, time
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from tunnel_tui.core import secrets
from tunnel_tui.core.errors import SecretStoreError
from tunnel_tui.core.secret import Secret

timeout = float(sys.argv[1])
started = time.monotonic()
status = secrets.keyring_status(timeout=timeout)
out = {"status": list(status), "status_s": time.monotonic() - started}
started = time.monotonic()
try:
    store = secrets.open_store(timeout=timeout)
    out["backend"] = store.backend_name
    out["repr"] = repr(store)
    if len(sys.argv) > 2:
        value = Secret(sys.argv[2])
        store.set("db-password:t", value)
        out["round_trip"] = store.get("db-password:t") == value
        store.delete("db-password:t")
        out["deleted"] = store.get("db-password:t") is None
except SecretStoreError as exc:
    out["error"] = exc.render()
out["open_s"] = time.monotonic() - started
print(json.dumps(out))
"""


def _run(
    env_changes: dict[str, str | None], timeout: float = 5.0, canary: str | None = None
) -> tuple[dict[str, object], str]:
    env = dict(os.environ)
    env.setdefault("TUNNEL_TUI_SECRETS", "keyring")  # never fall back to the vault here
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    args = [sys.executable, "-c", SCRIPT, str(timeout)] + ([canary] if canary else [])
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), proc.stdout + proc.stderr


def test_no_dbus_explains_why() -> None:
    out, _ = _run({"DBUS_SESSION_BUS_ADDRESS": None})
    usable, _, reason = out["status"]  # type: ignore[misc]
    assert usable is False
    assert reason == "no D-Bus session (DBUS_SESSION_BUS_ADDRESS unset, typical in an SSH login)"
    assert "no usable keyring: no D-Bus session" in str(out["error"])


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        ("keyring.backends.fail.Keyring", "cannot store secrets: refused"),
        ("keyring.backends.null.Keyring", "cannot store secrets: refused"),
        ("keyrings.alt.file.PlaintextKeyring", "stores secrets in plain text: refused"),
    ],
)
def test_unsafe_backends_are_refused_never_used(
    backend: str, words: str, isolated_env: IsolatedEnv
) -> None:
    out, text = _run({"PYTHON_KEYRING_BACKEND": backend}, canary=CANARY)
    usable, _, reason = out["status"]  # type: ignore[misc]
    assert usable is False
    assert f"keyring backend {backend} {words}" in str(reason)
    assert "error" in out and "backend" not in out
    assert CANARY not in text
    # keyrings.alt's plaintext file was never written
    written = [p for p in isolated_env.user_home.rglob("*") if p.is_file()]
    assert not [p for p in written if "keyring" in p.name], written


def test_plaintext_refused_even_with_dbus_present(secret_service: SecretServiceHandle) -> None:
    """PYTHON_KEYRING_BACKEND pointing at plaintext is refused; the real keyring is used."""
    out, _ = _run({"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}, canary=CANARY)
    assert out["backend"] == "Secret Service"
    assert out["round_trip"] is True
    assert "plain text: refused" in str(out["status"][2])  # type: ignore[index]


def test_locked_keyring_fails_fast(locked_secret_service: SecretServiceHandle) -> None:
    out, text = _run({}, timeout=3.0, canary=CANARY)
    usable, _, reason = out["status"]  # type: ignore[misc]
    assert usable is False
    assert "locked" in str(reason)
    assert "locked" in str(out["error"])
    assert float(out["open_s"]) < 3.5  # type: ignore[arg-type]
    assert CANARY not in text


def test_keyring_that_never_answers_times_out_and_exits(tmp_path: Path) -> None:
    """A D-Bus socket that accepts but never speaks: like a keyring stuck on a prompt.
    Every call gives up after the timeout and the process still exits."""
    sock_path = Path("/tmp") / f"tt-hang-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(16)
    try:
        started = time.monotonic()
        out, _ = _run({"DBUS_SESSION_BUS_ADDRESS": f"unix:path={sock_path}"}, timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        server.close()
        sock_path.unlink()
    usable, _, reason = out["status"]  # type: ignore[misc]
    assert usable is False
    assert "did not answer within 1 s" in str(reason)
    assert "did not answer within 1 s" in str(out["error"])
    assert elapsed < 20  # two probes of 1 s each plus interpreter start, no hang at exit


def test_real_secret_service_in_a_fresh_process(secret_service: SecretServiceHandle) -> None:
    out, text = _run({}, canary=CANARY)
    assert out["status"] == [True, "Secret Service", ""]
    assert out["backend"] == "Secret Service"
    assert out["round_trip"] is True and out["deleted"] is True
    assert CANARY not in text  # not in repr, status or debug logs


def test_vault_mode_never_touches_the_keyring(secret_service: SecretServiceHandle) -> None:
    out, _ = _run({"TUNNEL_TUI_SECRETS": "vault"})
    assert out["status"][0] is False  # type: ignore[index]
    assert "TUNNEL_TUI_SECRETS=vault" in str(out["status"][2])  # type: ignore[index]
    assert "the vault is locked" in str(out["error"])
