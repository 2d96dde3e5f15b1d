"""Choosing an OS keyring safely, and talking to it without ever hanging.

`keyring`'s own default is not trusted: without a D-Bus session it picks `fail`, and
with `keyrings.alt` installed it silently stores base64 plaintext in a file. So:
- candidates are keyring's viable backends, kept only if their class is on an
  allowlist (Secret Service, libsecret, KWallet, macOS Keychain, Windows);
- `fail`, `null`, `chainer` and anything from `keyrings.alt` are refused by name;
- the chosen backend must pass a canary set/get/delete of a random value;
- every call runs in a daemon thread with a timeout: a locked keyring waiting for
  an unlock prompt gives SecretStoreError, never a hang, and a stuck thread does not
  keep the interpreter from exiting.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from tunnel_tui.core.errors import SecretStoreError
from tunnel_tui.core.secret import Secret

SERVICE = "tunnel-tui"
DEFAULT_TIMEOUT = 5.0
_CANARY_PREFIX = "canary:"
# Reads retried when the item found by a search was deleted before it could be read.
_VANISHED_RETRIES = 3

# (module, class name) of backends that keep secrets encrypted, behind the user's login.
ALLOWED: dict[tuple[str, str], str] = {
    ("keyring.backends.SecretService", "Keyring"): "Secret Service",
    ("keyring.backends.libsecret", "Keyring"): "Secret Service (libsecret)",
    ("keyring.backends.kwallet", "DBusKeyring"): "KWallet",
    ("keyring.backends.kwallet", "DBusKeyringKWallet4"): "KWallet 4",
    ("keyring.backends.macOS", "Keyring"): "macOS Keychain",
    ("keyring.backends.Windows", "WinVaultKeyring"): "Windows Credential Manager",
}
_NO_STORAGE = {
    ("keyring.backends.fail", "Keyring"),
    ("keyring.backends.null", "Keyring"),
    ("keyring.backends.chainer", "ChainerBackend"),
}

T = TypeVar("T")
log = logging.getLogger(__name__)


class KeyringStatus(NamedTuple):
    usable: bool
    name: str  # backend shown to people ("Secret Service"), "" when none
    reason: str  # one line, for the TUI header and CLI messages


def qualified_name(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def refusal(obj: object) -> str | None:
    """Why this backend must never be used, or None if it is not on a deny list."""
    cls = obj if isinstance(obj, type) else type(obj)
    key = (cls.__module__, cls.__qualname__)
    name = qualified_name(cls)
    if cls.__module__.split(".")[0] == "keyrings":  # keyrings.alt and friends
        return f"keyring backend {name} stores secrets in plain text: refused"
    if key in _NO_STORAGE:
        return f"keyring backend {name} cannot store secrets: refused"
    if key not in ALLOWED:
        return f"keyring backend {name} is not on tunnel-tui's allowlist: refused"
    return None


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run `fn` in a daemon thread; SecretStoreError if it takes longer than `timeout`."""
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the caller below
            future.set_exception(exc)

    # A daemon thread: if the keyring never answers, the process can still exit.
    threading.Thread(target=run, name=f"keyring-{what}", daemon=True).start()
    try:
        return future.result(timeout)
    except FutureTimeout:
        raise SecretStoreError(
            f"the keyring did not answer within {timeout:g} s ({what})",
            hint="it may be locked and waiting for an unlock prompt: unlock it "
            "(e.g. log in to the desktop session), or use the vault: tunnel-tui vault unlock",
        ) from None


def _error_text(exc: BaseException, *hide: str) -> str:
    """Exception text for a message, with any secret value cut out."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for value in hide:
        if value and value in text:
            text = text.replace(value, "***")
    return f"{type(exc).__name__}: {text[:200]}"


@dataclass
class KeyringStore:
    """A SecretStore on an allow-listed keyring backend that passed the canary probe."""

    backend: Any
    timeout: float = DEFAULT_TIMEOUT
    service: str = SERVICE

    @property
    def backend_name(self) -> str:
        cls = type(self.backend)
        return ALLOWED.get((cls.__module__, cls.__qualname__), qualified_name(cls))

    def __repr__(self) -> str:
        return f"KeyringStore({self.backend_name!r})"

    def get(self, name: str) -> Secret | None:
        value = self._call(self._get_password(name), f"get {name}")
        if value is None:
            return None
        if not isinstance(value, str):
            raise SecretStoreError(f"the keyring returned an unexpected value for {name}")
        return Secret(value)

    def _get_password(self, name: str) -> Callable[[], Any]:
        """get_password, searched again when an item vanished between the search and the
        read: Secret Service lists an item another client is deleting at that moment
        (two `up`s probing the keyring at once), and reading it raises "Item does not
        exist" although the entry we asked for is there."""

        def get() -> Any:
            for attempt in range(_VANISHED_RETRIES):
                try:
                    return self.backend.get_password(self.service, name)
                except Exception as exc:
                    if type(exc).__name__ != "ItemNotFoundException" or (
                        attempt == _VANISHED_RETRIES - 1
                    ):
                        raise
            return None  # not reached: the last attempt returns or raises

        return get

    def set(self, name: str, value: Secret) -> None:
        if not isinstance(value, Secret):
            raise TypeError("keyring values must be Secret")
        self._call(
            lambda: self.backend.set_password(self.service, name, value.reveal()),
            f"set {name}",
            hide=value.reveal(),
        )

    def delete(self, name: str) -> None:
        from keyring.errors import PasswordDeleteError

        def delete() -> None:
            try:
                self.backend.delete_password(self.service, name)
            except PasswordDeleteError:
                pass  # nothing to delete is fine

        self._call(delete, f"delete {name}")

    def _call(self, fn: Callable[[], T], what: str, hide: str = "") -> T:
        try:
            return call_with_timeout(fn, self.timeout, what)
        except SecretStoreError:
            raise
        except Exception as exc:
            raise _keyring_error(self.backend_name, exc, hide) from None


def _keyring_error(name: str, exc: BaseException, hide: str = "") -> SecretStoreError:
    from keyring.errors import KeyringLocked

    if isinstance(exc, KeyringLocked) or "unlock" in str(exc).lower():
        return SecretStoreError(
            f"the keyring ({name}) is locked",
            hint="unlock it (log in to the desktop session or use your keyring manager), "
            "or use the vault: tunnel-tui vault unlock",
        )
    return SecretStoreError(
        f"the keyring ({name}) failed: {_error_text(exc, hide)}",
        hint="check the keyring service, or use the vault: tunnel-tui vault unlock",
    )


# ---------------------------------------------------------------- choosing


def _no_dbus_reason() -> str | None:
    if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "no D-Bus session (DBUS_SESSION_BUS_ADDRESS unset, typical in an SSH login)"
    return None


def _backend_classes() -> list[type]:
    """The allow-listed backend classes this platform can have, re-evaluated (their
    `priority`) by the caller on each call.

    Only their own modules are imported: keyring's plugin loading imports every backend
    it knows (on Linux the macOS one runs gcc and ldconfig to look for a library, ~0.1 s
    of a cold `up`) and any installed plugin, all of which the allowlist refuses anyway.
    `keyring.backend.get_all_keyring()` is not used either: it caches its answer for the
    life of the process, so a D-Bus session that appears later would never be seen.
    """
    import importlib

    classes = []
    for module_name, class_name in ALLOWED:
        if _PLATFORM_OF.get(module_name, _OTHER) != _platform():
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a backend whose own dependencies are missing here
            log.debug("keyring: cannot import %s: %s", module_name, _error_text(exc))
            continue
        cls = getattr(module, class_name, None)
        if isinstance(cls, type):
            classes.append(cls)
    return classes


# Backends that exist on one platform only; the others (D-Bus ones) on the rest.
_OTHER = "other"
_PLATFORM_OF = {"keyring.backends.macOS": "darwin", "keyring.backends.Windows": "win32"}


def _platform() -> str:
    return sys.platform if sys.platform in ("darwin", "win32") else _OTHER


def _explicit_backend() -> tuple[Any | None, str | None]:
    """The backend named by PYTHON_KEYRING_BACKEND, if any: (instance, refusal)."""
    name = os.environ.get("PYTHON_KEYRING_BACKEND")
    if not name:
        return None, None
    import keyring.core

    try:
        backend = keyring.core.load_keyring(name)
    except Exception as exc:
        return None, f"PYTHON_KEYRING_BACKEND={name} cannot be loaded ({_error_text(exc)})"
    return backend, refusal(backend)


def _probe(backend: Any, timeout: float) -> None:
    """Canary set/get/delete of a random value; SecretStoreError if anything is off."""
    import secrets  # here: an `up` that never probes a keyring does not load it
    store = KeyringStore(backend, timeout)
    name = _CANARY_PREFIX + secrets.token_hex(8)
    value = Secret(secrets.token_urlsafe(24))
    store.set(name, value)
    try:
        back = store.get(name)
        if back != value:
            raise SecretStoreError(
                f"the keyring ({store.backend_name}) did not return what was stored"
            )
    finally:
        store.delete(name)
    if store.get(name) is not None:
        raise SecretStoreError(f"the keyring ({store.backend_name}) did not delete a test entry")


def _priority(cls: type, timeout: float) -> tuple[float | None, str]:
    """A backend class's priority, or None and why it is not viable here."""
    try:
        priority = call_with_timeout(lambda: cls.priority, timeout, "probe")  # type: ignore[attr-defined]
    except SecretStoreError as exc:
        return None, exc.message
    except Exception as exc:
        return None, " ".join(str(exc).split())[:200] or type(exc).__name__
    return float(priority), ""


def select(timeout: float = DEFAULT_TIMEOUT) -> tuple[KeyringStore | None, KeyringStatus]:
    """The keyring store to use (or None) and a status line saying why."""
    notes: list[str] = []
    explicit, explicit_refusal = _explicit_backend()
    if explicit_refusal:
        notes.append(explicit_refusal)
    elif explicit is not None:
        try:
            _probe(explicit, timeout)
            store = KeyringStore(explicit, timeout)
            return store, KeyringStatus(True, store.backend_name, "")
        except SecretStoreError as exc:
            notes.append(exc.message)

    ranked: list[tuple[float, type]] = []
    why_not: list[str] = []
    for cls in _backend_classes():
        if refusal(cls) is not None:
            continue
        priority, reason = _priority(cls, timeout)
        if priority is None or priority <= 0:
            if reason and sys.platform.startswith("linux") and "SecretService" in cls.__module__:
                why_not.append(f"{ALLOWED[(cls.__module__, cls.__qualname__)]}: {reason}")
            continue
        ranked.append((priority, cls))
    ranked.sort(key=lambda item: item[0], reverse=True)

    for _, cls in ranked:
        try:
            backend = call_with_timeout(cls, timeout, "open")
        except Exception as exc:
            notes.append(f"{ALLOWED[(cls.__module__, cls.__qualname__)]}: {_error_text(exc)}")
            continue
        try:
            _probe(backend, timeout)
        except SecretStoreError as exc:
            notes.append(exc.message)
            continue
        store = KeyringStore(backend, timeout)
        log.debug("keyring: using %s (%s)", store.backend_name, qualified_name(backend))
        return store, KeyringStatus(True, store.backend_name, "; ".join(notes))

    if not ranked:
        notes.append(_no_dbus_reason() or "; ".join(why_not) or "no supported keyring found")
    log.debug("keyring: none usable: %s", "; ".join(notes))
    name = ""
    if ranked:
        name = ALLOWED.get((ranked[0][1].__module__, ranked[0][1].__qualname__), "")
    return None, KeyringStatus(False, name, "; ".join(notes))
