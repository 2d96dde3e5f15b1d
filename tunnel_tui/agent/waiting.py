"""The agent waits for a key: `up NAME --wait-for-key MINUTES` (DESIGN.md, "Waiting
for the key").

The first attempt runs while the caller waits, so a host key the agent cannot trust is
refused there and then (the agent never trusts a new host key itself; the hint names
the fingerprint and `--accept-host-key`). After that the agent keeps trying on its own
— each attempt is `validate`'s full check — with capped, jittered backoff
(`TUNNEL_TUI_KEY_WAIT_CAP` seconds, 30 by default), until the bastion accepts the key:
then it brings the tunnel up and notifies "NAME is up". A database that refuses the
login does not stop that: the tunnel is up, with that error and its hint.

Only these end a wait early, each with its own message: the host key changed (or is no
longer trusted), the connection was removed from the config, `down NAME`. A rejected
key, an unknown user (sshd answers it exactly like an unknown key) and an unreachable
bastion keep waiting. When the window ends the tunnel is `failed`, and `last_error`
names the line to add. The deadline is on disk (`wait_records`): a restarted agent
resumes with it, reading the keys from its own store, or sits in `waiting-for-secret`
with a hint until a caller brings them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from tunnel_tui.agent import wait_records
from tunnel_tui.agent.notify import alert_up
from tunnel_tui.agent.snapshot import down_status
from tunnel_tui.core.client_keys import ClientKey, private_of
from tunnel_tui.core.errors import SecretStoreError, TunnelError, TunnelTuiError
from tunnel_tui.core.model import Connection, SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState, TunnelStatus

if TYPE_CHECKING:
    from tunnel_tui.agent.service import CallerSecrets, TunnelService

log = logging.getLogger("tunnel_tui.agent")

DEFAULT_CAP = 30.0  # the longest pause between two attempts, seconds
FIRST_DELAY = 2.0  # the backoff's first step (never above the cap)
TICK = 1.0  # how often a pause looks at the config (connection removed or edited)
AFTER_SSH = ("channel", "db-tls", "db-auth", "query")  # failures once the key is in


class _Outcome(Enum):
    ACCEPTED = "accepted"  # the bastion took the key (later steps may still have failed)
    WAIT = "wait"  # not yet: key rejected, bastion unreachable
    END = "end"  # stop waiting: host key changed or untrusted, nothing to log in with


@dataclass
class _Attempt:
    outcome: _Outcome
    error: str | None = None
    hint: str | None = None
    exc: TunnelTuiError | None = None
    rejected: SshEndpoint | None = None  # the hop that refused the key


@dataclass(eq=False)
class _Wait:
    conn: Connection
    until: datetime  # UTC
    started: datetime
    secrets: CallerSecrets  # CallerSecrets() after a restart: the agent's own store
    keys: dict[str, ClientKey] | None = field(default=None, repr=False)  # None: not read yet
    db_password: Secret | None = field(default=None, repr=False)
    state: TunnelState = TunnelState.WAITING_FOR_KEY
    last_error: str | None = None
    hint: str | None = None
    rejected_key_id: str | None = None
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.conn.name


class _Secrets:
    """What validation reads, from what the wait holds (never a secret store)."""

    def __init__(self, catalog: Any, keys: dict[str, ClientKey], db_password: Secret | None):
        self._catalog = catalog
        self._keys = keys
        self._db_password = db_password

    def key(self, key_id: str) -> Any:
        return self._catalog.key(key_id)

    def private_key(self, key_id: str) -> Secret:
        private = private_of(self._keys[key_id]) if key_id in self._keys else None
        if private is None:
            raise SecretStoreError(f"the agent holds no private key {key_id}")
        return private

    def db_password(self, name: str) -> Secret | None:
        return self._db_password


class KeyWaits:
    """The waits of one agent, by connection name."""

    def __init__(self, service: TunnelService) -> None:
        self._service = service
        self._waits: dict[str, _Wait] = {}
        self.cap = max(_env_float("TUNNEL_TUI_KEY_WAIT_CAP", DEFAULT_CAP), 0.05)
        self.first_delay = min(FIRST_DELAY, self.cap)

    # -- what status shows ------------------------------------------------------------

    def status(self, name: str) -> TunnelStatus | None:
        wait = self._waits.get(name)
        return self._status(wait) if wait is not None else None

    def _status(self, wait: _Wait) -> TunnelStatus:
        return dataclasses.replace(
            down_status(wait.conn),
            state=wait.state,
            since=wait.started,
            last_error=wait.last_error,
            hint=wait.hint,
            wait_until=wait.until,
        )

    def _publish(self, wait: _Wait) -> None:
        self._service._publish(self._status(wait))

    # -- starting, feeding, ending ----------------------------------------------------

    async def start(self, name: str, seconds: float, secrets: CallerSecrets) -> TunnelStatus:
        """Try once now (a host key that cannot be trusted is refused here: HostKeyError),
        then keep waiting in the background. Returns the tunnel's status: `up` when the
        key already works, else `waiting-for-key` with `wait_until`."""
        service = self._service
        conn = service.connection(name)
        if name in self._waits:
            return await self.feed(name, secrets)
        live = service._live().get(name)
        if live is not None:
            if live.state in (TunnelState.UP, TunnelState.CONNECTING, TunnelState.RECONNECTING):
                return live
            await service._stop_quietly(name)  # a tunnel failed for good earlier
        keys = await service._keys_for(conn, secrets)
        now = datetime.now(UTC)
        wait = _Wait(conn, now + timedelta(seconds=seconds), now, secrets, keys)
        wait.db_password = await self._db_password(wait)
        attempt = await self._attempt(wait)
        if attempt.outcome is _Outcome.END:
            assert attempt.exc is not None
            raise attempt.exc
        if attempt.outcome is _Outcome.ACCEPTED:
            return await self._bring_up(wait, attempt)
        record = wait_records.WaitRecord(name, wait.until)
        await asyncio.to_thread(wait_records.put, service.home, record)
        service._failures.pop(name, None)
        self._note(wait, attempt)
        self._begin(wait)
        log.info("%s: waiting for its key until %s", name, _iso(wait.until))
        return self._status(wait)

    async def feed(self, name: str, secrets: CallerSecrets) -> TunnelStatus:
        """`up NAME` while NAME waits: a wait that has no keys (a restarted agent with no
        store of its own) takes the caller's and tries again at once."""
        wait = self._waits[name]
        if wait.keys is None and (secrets.keys is not None or secrets.ssh_auth_sock):
            try:
                wait.keys = await self._service._keys_for(wait.conn, secrets)
            except TunnelTuiError:
                return self._status(wait)
            wait.secrets = secrets
            wait.db_password = await self._db_password(wait)
            wait.state = TunnelState.WAITING_FOR_KEY
            wait.wake.set()
            self._publish(wait)
        return self._status(wait)

    async def resume(self) -> None:
        """At agent start: every recorded wait, with its original deadline."""
        service = self._service
        records = await asyncio.to_thread(wait_records.load, service.home, wait_records.KIND_KEY)
        if not records:
            return
        connections = service.connections()
        now = datetime.now(UTC)
        for name, record in records.items():
            conn = connections.get(name)
            if conn is None:
                log.info("%s: no longer configured; its wait for a key ends", name)
                await asyncio.to_thread(wait_records.drop, service.home, name)
                continue
            wait = _Wait(conn, record.until, now, _no_caller())
            log.info("%s: resuming the wait for its key until %s", name, _iso(record.until))
            self._begin(wait)

    def wake(self) -> None:
        """The vault was unlocked in the agent: waits without keys look again now."""
        for wait in self._waits.values():
            if wait.keys is None:
                wait.wake.set()

    async def cancel(self, name: str) -> bool:
        """`down NAME`: stop waiting. False when NAME was not waiting."""
        wait = self._waits.pop(name, None)
        if wait is None:
            return False
        await self._stop_task(wait)
        await asyncio.to_thread(wait_records.drop, self._service.home, name)
        log.info("%s: stopped waiting for its key (tunnel-tui down %s)", name, name)
        return True

    async def aclose(self) -> None:
        """Agent shutdown: the tasks stop, the records stay (the next agent resumes)."""
        for wait in list(self._waits.values()):
            await self._stop_task(wait)
        self._waits.clear()

    @staticmethod
    async def _stop_task(wait: _Wait) -> None:
        task, wait.task = wait.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _begin(self, wait: _Wait) -> None:
        self._waits[wait.name] = wait
        self._publish(wait)
        tries = 1 if wait.keys is not None else 0
        wait.task = asyncio.get_running_loop().create_task(self._run(wait, tries))

    async def _end(
        self, wait: _Wait, message: str, hint: str | None, *, removed: bool = False
    ) -> None:
        """Stop waiting for good: `failed` with `message` (or, for a connection that was
        removed, a last `down` event carrying it)."""
        if self._waits.get(wait.name) is wait:
            del self._waits[wait.name]
        await asyncio.to_thread(wait_records.drop, self._service.home, wait.name)
        if removed:
            log.info("%s: %s", wait.name, message)
            self._service._publish(
                dataclasses.replace(down_status(wait.conn), last_error=message, hint=hint)
            )
            return
        self._service._record_failure(wait.conn, TunnelError(message, hint=hint))

    # -- the loop -----------------------------------------------------------------------

    async def _run(self, wait: _Wait, tries: int) -> None:
        """`tries`: attempts made already (the first one ran while the caller waited)."""
        try:
            while True:
                if wait.keys is not None and tries > 0:
                    delay = _backoff(tries - 1, self.first_delay, self.cap)
                    if not await self._pause(wait, delay):
                        return
                elif wait.keys is None and not await self._load_own_keys(wait):
                    if not await self._pause(wait, self.cap):
                        return
                    if _now() >= wait.until:
                        await self._window_ended(wait)
                        return
                    continue
                attempt = await self._attempt(wait)
                tries += 1
                if attempt.outcome is _Outcome.ACCEPTED:
                    try:
                        await self._bring_up(wait, attempt)
                    except TunnelTuiError as exc:  # recorded as the tunnel's failure by `up`
                        log.warning("%s: key accepted, but the tunnel failed: %s",
                                    wait.name, exc.message)
                        self._service._alert_failure(wait.name)
                    return
                if attempt.outcome is _Outcome.END:
                    assert attempt.exc is not None
                    await self._end(
                        wait, f"stopped waiting for the key: {attempt.exc.message}",
                        attempt.exc.hint,
                    )
                    return
                self._note(wait, attempt)
                self._publish(wait)
                if _now() >= wait.until:
                    await self._window_ended(wait)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must end one wait, visibly, never the agent
            log.exception("%s: the wait for its key failed", wait.name)
            await self._end(wait, f"the wait for the key failed: {type(exc).__name__}", None)

    async def _pause(self, wait: _Wait, delay: float) -> bool:
        """Sleep `delay` (never past the deadline), looking at the config every TICK:
        False when the wait ended because its connection was removed."""
        end = min(_now() + timedelta(seconds=delay), wait.until)
        while True:
            try:
                conn = self._service.connections().get(wait.name)
            except TunnelTuiError:  # a config being rewritten by hand: look again later
                conn = wait.conn
            if conn is None:
                await self._end(
                    wait,
                    f"{wait.name} was removed from the configuration while waiting for its "
                    "key; the agent stopped waiting",
                    None,
                    removed=True,
                )
                return False
            wait.conn = conn  # an edit (another bastion user, port...) counts at once
            left = (end - _now()).total_seconds()
            if left <= 0:
                return True
            wait.wake.clear()
            try:
                await asyncio.wait_for(wait.wake.wait(), min(TICK, left))
                return True  # woken: keys arrived
            except TimeoutError:
                pass

    async def _load_own_keys(self, wait: _Wait) -> bool:
        """After a restart: the keys from the agent's own keyring or unlocked vault."""
        try:
            wait.keys = await self._service._keys_for(wait.conn, _no_caller())
        except TunnelTuiError as exc:
            if wait.state is not TunnelState.WAITING_FOR_SECRET:
                log.info("%s: no key to wait with: %s", wait.name, exc.message)
            wait.state = TunnelState.WAITING_FOR_SECRET
            wait.last_error = (
                f"the agent restarted and cannot read the key of {wait.name}: {exc.message}"
            )
            wait.hint = (
                f"tunnel-tui up {wait.name} (from a terminal with your keyring), "
                "or tunnel-tui vault unlock"
            )
            self._publish(wait)
            return False
        wait.db_password = await self._db_password(wait)
        wait.state = TunnelState.WAITING_FOR_KEY
        return True

    async def _db_password(self, wait: _Wait) -> Secret | None:
        if wait.secrets.keys is not None:
            return wait.secrets.db_password  # the caller read it (None: none stored)
        from tunnel_tui.core.catalog import Catalog

        service = self._service
        catalog = Catalog(service.home, vault_passphrase=service.vault_passphrase())
        try:
            return await asyncio.to_thread(catalog.db_password, wait.name)
        except (TunnelTuiError, OSError) as exc:
            log.info("%s: no database password for the checks: %s", wait.name, exc)
            return None

    async def _window_ended(self, wait: _Wait) -> None:
        line, where = self._line(wait)
        message = (
            f"the key was not accepted by {wait.conn.bastion.display} before the wait ended "
            f"at {_iso(wait.until)}; add this line to {where}: {line}"
        )
        await self._end(
            wait, message, f"add the line, then: tunnel-tui up {wait.name} --wait-for-key 60"
        )

    def _line(self, wait: _Wait) -> tuple[str, str]:
        """The authorized_keys line (as `key show` prints it) and where it goes."""
        from tunnel_tui.core.catalog import Catalog
        from tunnel_tui.core.keys import authorized_keys_line

        hop = next(
            (h for h in wait.conn.hops if (h.key_id or wait.conn.key_id) == wait.rejected_key_id),
            wait.conn.bastion,
        )
        key = Catalog(self._service.home).key(wait.rejected_key_id or wait.conn.key_id)
        line = authorized_keys_line(key.public_key, key.line_comment)
        return line, f"~{hop.user}/.ssh/authorized_keys on {hop.host}"

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(self, wait: _Wait) -> _Attempt:
        """One run of `validate` (it never trusts a host key here: no consent given)."""
        from tunnel_tui.core import paths
        from tunnel_tui.core.catalog import Catalog
        from tunnel_tui.core.known_hosts import KnownHosts
        from tunnel_tui.core.steps import StepStatus
        from tunnel_tui.engine.errors import AuthRejected, HopError, HostKeyProblem
        from tunnel_tui.validate import runner

        service = self._service
        assert wait.keys is not None
        causes: list[BaseException] = []
        failed = None
        source = _Secrets(Catalog(service.home), wait.keys, wait.db_password)
        async for result in runner.run(
            wait.conn, source,
            known_hosts=KnownHosts(paths.known_hosts_path(service.home)),
            ssh_auth_sock=wait.secrets.ssh_auth_sock,
            on_failure=causes.append,
        ):  # fmt: skip
            if result.status is StepStatus.FAIL and failed is None:
                failed = result
        if failed is None:
            return _Attempt(_Outcome.ACCEPTED)
        if failed.step in AFTER_SSH:
            return _Attempt(_Outcome.ACCEPTED, failed.detail, failed.hint)
        cause = causes[0] if causes else None
        if isinstance(cause, HostKeyProblem):
            return _Attempt(_Outcome.END, exc=cause)
        if isinstance(cause, AuthRejected):
            return _Attempt(
                _Outcome.WAIT, f"the bastion does not accept the key yet: {cause.message}",
                cause.hint, rejected=cause.hop,
            )
        if failed.step in ("resolve", "tcp", "host-key", "ssh-auth") and (
            cause is None or isinstance(cause, HopError | OSError)
        ):
            return _Attempt(_Outcome.WAIT, failed.detail, failed.hint)
        return _Attempt(_Outcome.END, exc=TunnelError(failed.detail, hint=failed.hint))

    def _note(self, wait: _Wait, attempt: _Attempt) -> None:
        wait.last_error, wait.hint = attempt.error, attempt.hint
        if attempt.rejected is not None:
            wait.rejected_key_id = attempt.rejected.key_id or wait.conn.key_id

    async def _bring_up(self, wait: _Wait, attempt: _Attempt) -> TunnelStatus:
        """The key is in: the tunnel comes up (with the database's error, if any)."""
        service = self._service
        if self._waits.get(wait.name) is wait:
            del self._waits[wait.name]
        assert wait.keys is not None
        privates = {k: p for k, v in wait.keys.items() if (p := private_of(v)) is not None}
        secrets = dataclasses.replace(wait.secrets, keys=privates)
        note = (attempt.error, attempt.hint) if attempt.error is not None else None
        try:
            status = await service.up(wait.name, secrets=secrets, note=note)
        finally:
            await asyncio.to_thread(wait_records.drop, service.home, wait.name)
        log.info("%s: the bastion accepted the key; up on %s:%s", wait.name,
                 status.local_host, status.local_port)
        if wait.task is not None and service._alert is not None:  # nobody watched: tell
            alert_up(status)  # the desktop, on the channel failures use
        return status


def _no_caller() -> CallerSecrets:
    from tunnel_tui.agent.service import CallerSecrets

    return CallerSecrets(no_keys="the agent restarted: nobody sent the key")


def _backoff(tries: int, first: float, cap: float) -> float:
    from tunnel_tui.engine.reconnect import backoff_delay

    return backoff_delay(tries, first, cap)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
