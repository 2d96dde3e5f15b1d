"""open_store(): the real Secret Service when it works, the vault otherwise, and a
clear reason when neither is available. Secrets never leak into messages or logs."""

from __future__ import annotations

import logging
import subprocess

import pytest

from tests.fixtures.binaries import require_binary
from tests.fixtures.secret_service import SecretServiceHandle
from tunnel_tui.core import keys, paths, secrets, vault
from tunnel_tui.core.errors import SecretStoreError, UsageError
from tunnel_tui.core.keyring_backend import KeyringStore
from tunnel_tui.core.secret import Secret

CANARY = "canary-5be0d3a7c1"
FAST = vault.ScryptParams(log2_n=10, r=8, p=1)


def test_real_secret_service_round_trips(
    secret_service: SecretServiceHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = secrets.open_store()
    assert isinstance(store, KeyringStore)
    assert store.backend_name == "Secret Service"
    big = Secret("v" * 3072)
    rsa_pem = keys.generate("rsa").private_pem
    store.set("db-password:big", big)
    store.set("key:rsa", rsa_pem)
    store.set("db-password:canary", Secret(CANARY))
    assert store.get("db-password:big") == big
    assert store.get("key:rsa") == rsa_pem
    assert store.get("nothing-here") is None
    store.delete("key:rsa")
    store.delete("key:rsa")  # deleting nothing is fine
    assert store.get("key:rsa") is None
    assert CANARY not in caplog.text and CANARY not in repr(store)


def test_entries_are_visible_to_other_secret_service_clients(
    secret_service: SecretServiceHandle,
) -> None:
    """Service "tunnel-tui", one entry per name: secret-tool finds what we stored."""
    secret_tool = require_binary("secret-tool", "libsecret-tools")
    secrets.open_store().set("db-password:prod", Secret(CANARY))
    out = subprocess.run(
        [secret_tool, "lookup", "service", "tunnel-tui", "username", "db-password:prod"],
        env=secret_service.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout == CANARY


def test_keyring_status_with_real_secret_service(secret_service: SecretServiceHandle) -> None:
    assert secrets.keyring_status() == (True, "Secret Service", "")


def test_locked_keyring_in_process(locked_secret_service: SecretServiceHandle) -> None:
    usable, _, reason = secrets.keyring_status(timeout=2)
    assert not usable and "locked" in reason
    with pytest.raises(SecretStoreError) as info:
        secrets.open_store(timeout=2)
    assert "locked" in info.value.message
    assert "vault unlock" in (info.value.hint or "")


def test_no_keyring_and_no_passphrase_says_how_to_unlock() -> None:
    with pytest.raises(SecretStoreError) as info:
        secrets.open_store()
    assert "no D-Bus session" in info.value.message
    assert info.value.hint == (
        "create the encrypted vault: tunnel-tui vault unlock (asks for a new passphrase)"
    )
    vault.create(None, Secret("a passphrase"), params=FAST)
    with pytest.raises(SecretStoreError) as info:
        secrets.open_store()
    assert info.value.hint == "unlock the encrypted vault: tunnel-tui vault unlock"


def test_no_keyring_falls_back_to_the_vault() -> None:
    passphrase = Secret("a passphrase")
    store = secrets.open_store(vault_passphrase=passphrase)  # creates it
    assert store.backend_name == "vault"
    store.set("db-password:prod", Secret(CANARY))
    assert paths.vault_path().exists()
    again = secrets.open_store(vault_passphrase=passphrase)
    assert again.get("db-password:prod") == Secret(CANARY)
    with pytest.raises(SecretStoreError, match="wrong vault passphrase") as info:
        secrets.open_store(vault_passphrase=Secret(CANARY))
    assert CANARY not in info.value.render()


def test_forced_modes(secret_service: SecretServiceHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNNEL_TUI_SECRETS", "vault")
    store = secrets.open_store(vault_passphrase=Secret("pass phrase"))
    assert store.backend_name == "vault"  # the working keyring is not touched
    monkeypatch.setenv("TUNNEL_TUI_SECRETS", "keyring")
    assert secrets.open_store().backend_name == "Secret Service"
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    with pytest.raises(SecretStoreError, match="no usable keyring"):
        secrets.open_store(vault_passphrase=Secret("pass phrase"))
    monkeypatch.setenv("TUNNEL_TUI_SECRETS", "plaintext")
    with pytest.raises(UsageError):
        secrets.open_store()


def test_set_refuses_plain_strings(secret_service: SecretServiceHandle) -> None:
    store = secrets.open_store()
    with pytest.raises(TypeError):
        store.set("db-password:x", CANARY)  # type: ignore[arg-type]


def test_stores_satisfy_the_protocol(secret_service: SecretServiceHandle) -> None:
    assert isinstance(secrets.open_store(), secrets.SecretStore)
    assert isinstance(vault.create(None, Secret("p4ss"), params=FAST), secrets.SecretStore)


def test_secret_service_daemon_gone_is_explained(secret_service: SecretServiceHandle) -> None:
    secret_service.daemon.stop_keyring()  # the fixture brings it back afterwards
    usable, _, reason = secrets.keyring_status(timeout=2)
    assert not usable
    assert "Secret Service" in reason and "neither running nor activatable" in reason


def test_locked_keyring_error_never_carries_the_value(
    locked_secret_service: SecretServiceHandle, caplog: pytest.LogCaptureFixture
) -> None:
    from keyring.backends.SecretService import Keyring

    caplog.set_level(logging.DEBUG)
    store = KeyringStore(Keyring(), timeout=2)
    with pytest.raises(SecretStoreError) as info:
        store.set("db-password:prod", Secret(CANARY))
    assert "locked" in info.value.message
    everything = f"{info.value.render()} {info.value!r} {info.value.__cause__!r} {caplog.text}"
    assert CANARY not in everything
