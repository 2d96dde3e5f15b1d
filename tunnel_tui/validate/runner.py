"""The step-by-step check of one connection, as an async stream of StepResult.

config → keyring → resolve → (tcp → host-key → ssh-auth) per hop → channel →
db-tls → db-auth → query. Stops at the first failure and marks the rest `skip`.
Every failure carries a hint a person can act on.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncssh

from tunnel_tui.core.certificates import Certificate, CertificateState, parse_certificate
from tunnel_tui.core.client_keys import CertifiedKey, ClientKey
from tunnel_tui.core.errors import KeyImportError, TunnelTuiError
from tunnel_tui.core.formatting import duration_words
from tunnel_tui.core.model import Connection, Key, KeyType, SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.ssh_agent import (
    ADD_HINT,
    AgentKey,
    AgentUnavailable,
    find_key,
    list_identities,
    socket_path,
)
from tunnel_tui.core.steps import VALIDATION_STEPS, StepResult, StepStatus
from tunnel_tui.engine.adhoc import temporary_forward
from tunnel_tui.engine.errors import (
    AgentKeyUnavailable,
    AuthRejected,
    BastionUnreachable,
    HopError,
    HostKeyProblem,
    HostKeyUnknown,
)
from tunnel_tui.engine.forward import channel_error
from tunnel_tui.engine.settings import EngineSettings
from tunnel_tui.engine.ssh import (
    HopTrace,
    KnownHostsLike,
    close_all,
    connect_hop,
    hop_label,
    import_key,
    unreachable_hint,
)
from tunnel_tui.engine.transport import open_tcp

HOP_STEPS = ("tcp", "host-key", "ssh-auth")
DB_STEPS = ("db-tls", "db-auth", "query")

HostKeyPrompt = Callable[[SshEndpoint, str], "bool | Awaitable[bool]"]


class SecretsSource(Protocol):
    """What validation needs of the Catalog (tests may pass a small object)."""

    def private_key(self, key_id: str) -> Secret: ...

    def db_password(self, name: str) -> Secret | None: ...


class _Failed(Exception):
    """Internal: a step failed; its result was already yielded."""


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _since(monotonic_start: float) -> float:
    return (time.monotonic() - monotonic_start) * 1000.0


def _default_known_hosts() -> KnownHostsLike:
    from tunnel_tui.core.known_hosts import KnownHosts  # H3's; imported when needed

    known: KnownHostsLike = KnownHosts()
    return known


async def run(
    conn: Connection,
    catalog: SecretsSource,
    *,
    accept_new_host_key: bool = False,
    accept_host_keys: Collection[str] = (),
    wait_for_key_seconds: float = 0,
    on_host_key: HostKeyPrompt | None = None,
    known_hosts: KnownHostsLike | None = None,
    settings: EngineSettings | None = None,
    db_timeout: float = 10.0,
    ssh_auth_sock: str | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> AsyncIterator[StepResult]:
    """Validate `conn`. An unknown host key is trusted (and saved) when its fingerprint
    is in `accept_host_keys`, or when `accept_new_host_key` (any key); otherwise
    `on_host_key(hop, fingerprint)` is asked (once per hop, only for a key we actually
    received) and True saves exactly that key.
    `ssh_auth_sock`: the caller's ssh-agent for ssh-agent keys (default $SSH_AUTH_SOCK).
    `on_failure(exc)`: told the typed error behind a failed step, where there is one
    (the agent's wait for a key tells a rejected key from a changed host key)."""
    run_ = _Validation(
        conn, catalog, known_hosts or _default_known_hosts(), settings or EngineSettings(),
        accept_new_host_key, wait_for_key_seconds, on_host_key, db_timeout,
        accept_keys=frozenset(accept_host_keys),
    )
    run_.ssh_auth_sock = ssh_auth_sock
    run_.on_failure = on_failure
    async for result in run_.results():
        yield result


class _Validation:
    def __init__(
        self, conn: Connection, catalog: SecretsSource, known_hosts: KnownHostsLike,
        settings: EngineSettings, accept_new: bool, wait_seconds: float,
        on_host_key: HostKeyPrompt | None, db_timeout: float,
        accept_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.accept_keys = accept_keys
        self.conn = conn
        self.catalog = catalog
        self.known_hosts = known_hosts
        self.settings = settings
        self.accept_new = accept_new
        self.wait_seconds = wait_seconds
        self.on_host_key = on_host_key
        self.db_timeout = db_timeout
        self.keys: dict[str, ClientKey] = {}
        self.ssh_auth_sock: str | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.key_records: dict[str, Key] = {}
        self.db_password: Secret | None = None
        self.conns: list[asyncssh.SSHClientConnection] = []
        self.done: list[str] = []  # steps reported, to skip the rest in order

    # ------------------------------------------------------------- driver

    async def results(self) -> AsyncIterator[StepResult]:
        try:
            async for result in self._steps():
                yield result
        except _Failed as failed:
            if self.on_failure is not None and failed.__cause__ is not None:
                self.on_failure(failed.__cause__)
            for result in self._skips():
                yield result
        finally:
            await close_all(self.conns)

    def _report(self, result: StepResult) -> StepResult:
        if result.status is not StepStatus.RUNNING:
            self.done.append(result.step)
        return result

    def _skips(self) -> list[StepResult]:
        out = []
        hops = self.conn.hops
        reported_hops = self.done.count("ssh-auth")
        failed_step = self.done[-1] if self.done else ""
        # The rest of the current hop, then the following hops, then the later steps.
        if failed_step in HOP_STEPS:
            hop_index = self.done.count("tcp") - 1
            for step in HOP_STEPS[HOP_STEPS.index(failed_step) + 1 :]:
                out.append(StepResult(step, StepStatus.SKIP,
                                      detail=self._hop_name(hop_index)))
            first_pending_hop = hop_index + 1
        else:
            first_pending_hop = reported_hops if failed_step in ("config", "keyring",
                                                                  "resolve") else len(hops)
        for step in VALIDATION_STEPS:
            if step in HOP_STEPS or step in self.done:
                if step == "tcp":
                    for index in range(first_pending_hop, len(hops)):
                        out.extend(StepResult(s, StepStatus.SKIP, detail=self._hop_name(index))
                                   for s in HOP_STEPS)
                continue
            out.append(StepResult(step, StepStatus.SKIP))
        return out

    def _hop_name(self, index: int) -> str:
        hops = self.conn.hops
        return hop_label(hops[index], index, len(hops))

    async def _steps(self) -> AsyncIterator[StepResult]:
        config = self._config()
        yield self._report(config)
        if config.status is StepStatus.FAIL:
            raise _Failed
        async for r in self._keyring():
            yield self._report(r)
        async for r in self._resolve():
            yield self._report(r)
        for index in range(len(self.conn.hops)):
            async for r in self._hop(index):
                yield self._report(r)
        async for r in self._channel():
            yield self._report(r)
        async for r in self._database():
            yield self._report(r)

    # ------------------------------------------------------------- steps

    def _fail(self, step: str, start: float, detail: str, hint: str | None) -> StepResult:
        return StepResult(step, StepStatus.FAIL, _ms(start), detail, hint)

    def _config(self) -> StepResult:
        start = time.perf_counter()
        c = self.conn
        problems = []
        for hop in c.hops:
            if not hop.host or not hop.user or not 0 < hop.port < 65536:
                problems.append(f"SSH server {hop.display} needs a host, a user and a port")
        if not c.database.host or not 0 < c.database.port < 65536:
            problems.append("the database needs a host and a port")
        if not c.key_id:
            problems.append("no SSH key is set")
        if problems:
            return self._fail(
                "config", start, "; ".join(problems), f"fix it with tunnel-tui edit {c.name}"
            )
        via = " → ".join(h.display for h in c.hops)
        return StepResult("config", StepStatus.OK, _ms(start),
                          f"{c.database.kind.label} {c.database.target} via {via}")

    async def _keyring(self) -> AsyncIterator[StepResult]:
        """The SSH key(s) and the database password: every secret the rest needs."""
        start = time.perf_counter()
        wanted = [self.conn.key_id] + [h.key_id for h in self.conn.jumps if h.key_id]
        details = []
        hints = []
        for key_id in dict.fromkeys(wanted):
            record = self._record(key_id)
            if record is not None and record.in_agent:
                try:
                    agent_key, detail, hint = await asyncio.to_thread(self._agent_key, record)
                except AgentUnavailable as exc:
                    yield self._fail("keyring", start, exc.message, exc.hint)
                    raise _Failed from exc
                except _CertificateExpired as exc:
                    yield self._fail("keyring", start, exc.detail, exc.hint)
                    raise _Failed from exc
                self.keys[key_id] = agent_key
                details.append(detail)
                hints += [hint] if hint else []
                continue
            try:
                secret = await asyncio.to_thread(self.catalog.private_key, key_id)
            except TunnelTuiError as exc:
                yield self._fail("keyring", start, exc.message,
                                 exc.hint or "unlock the keyring, or re-import the key")
                raise _Failed from exc
            except Exception as exc:  # a keyring backend's own error type
                yield self._fail("keyring", start,
                                 f"reading key {key_id} failed: {type(exc).__name__}",
                                 "unlock the keyring (or the vault) and retry")
                raise _Failed from exc
            if secret is None:
                yield self._fail("keyring", start, f"no private key {key_id} in the keyring",
                                 f"re-import it: tunnel-tui edit {self.conn.name} --identity FILE")
                raise _Failed
            try:
                key = import_key(secret)
            except (asyncssh.KeyImportError, ValueError) as exc:
                yield self._fail(
                    "keyring", start, f"the stored key {key_id} cannot be read",
                    f"re-import it: tunnel-tui edit {self.conn.name} --identity FILE",
                )
                raise _Failed from exc
            self.keys[key_id] = secret
            algo = key.get_algorithm().removeprefix("ssh-")
            detail = f"{algo} {key.get_fingerprint('sha256')}"
            if record is not None and record.certificate:
                try:
                    note, hint = _check_certificate(_parse_stored(record), self.conn)
                except _CertificateExpired as exc:
                    yield self._fail("keyring", start, exc.detail, exc.hint)
                    raise _Failed from exc
                self.keys[key_id] = CertifiedKey(secret, record.certificate)
                detail += f", {note}"
                hints += [hint] if hint else []
            details.append(detail)
        try:
            self.db_password = await asyncio.to_thread(self.catalog.db_password, self.conn.name)
        except TunnelTuiError as exc:
            yield self._fail("keyring", start, f"the database password: {exc.message}",
                             exc.hint or "unlock the keyring and retry")
            raise _Failed from exc
        except Exception as exc:
            yield self._fail("keyring", start,
                             f"reading the database password failed: {type(exc).__name__}",
                             "unlock the keyring (or the vault) and retry")
            raise _Failed from exc
        if self.db_password is None:
            details.append("no database password stored")
        yield StepResult("keyring", StepStatus.OK, _ms(start), ", ".join(details),
                         "; ".join(hints) or None)

    def _record(self, key_id: str) -> Key | None:
        lookup = getattr(self.catalog, "key", None)
        if lookup is None:
            return None
        try:
            record = lookup(key_id)
        except (TunnelTuiError, KeyError):
            return None
        return record if isinstance(record, Key) else None

    def _agent_key(self, record: Key) -> tuple[AgentKey, str, str | None]:
        """The key in the caller's ssh-agent (blocking: runs in a thread)."""
        path = socket_path(self.ssh_auth_sock)
        held = find_key(list_identities(path), record.public_key)
        if not held:
            raise AgentUnavailable(
                f"your ssh-agent ({path}) does not hold key {record.name} "
                f"({record.fingerprint})",
                hint=f"{ADD_HINT}; check SSH_AUTH_SOCK points at the agent that has it",
            )
        detail = f"ssh-agent key {record.type.value} {record.fingerprint} (agent at {path})"
        hint = None
        certs = [c for c in (i.certificate for i in held) if c is not None]
        if certs:
            note, hint = _check_certificate(_best(certs), self.conn)
            detail += f", {note}"
        if record.type in (KeyType.SK_ED25519, KeyType.SK_ECDSA):
            detail += ", a security key"
        return AgentKey(path, record.public_key, record.fingerprint), detail, hint

    async def _resolve(self) -> AsyncIterator[StepResult]:
        start = time.perf_counter()
        first = self.conn.hops[0]
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(
                    first.host, first.port, type=socket.SOCK_STREAM
                ),
                self.settings.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "timed out"
            yield self._fail(
                "resolve", start, f"{first.host} does not resolve: {why}",
                f"check the host name {first.host!r} (typo? VPN or DNS needed to see it?)",
            )
            raise _Failed from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        shown = ", ".join(addresses[:3])
        detail = shown if addresses == [first.host] else f"{first.host} → {shown}"
        self.address = addresses[0]
        yield StepResult("resolve", StepStatus.OK, _ms(start), detail)

    async def _hop(self, index: int) -> AsyncIterator[StepResult]:
        hop = self.conn.hops[index]
        name = self._hop_name(index)
        asked = False
        prompted = False  # the user accepted the key at the prompt
        host_key_reported = False
        deadline = time.monotonic() + self.wait_seconds
        auth_started: float | None = None
        tcp_reported = False
        while True:
            start = time.perf_counter()
            sock = None
            if index == 0:
                try:
                    sock = await open_tcp(hop.host, hop.port, self.settings.connect_timeout)
                except OSError as exc:
                    step = "ssh-auth" if tcp_reported else "tcp"
                    yield self._fail(
                        step, start, f"{name}: {_os_text(exc)}", unreachable_hint(hop, 0)
                    )
                    raise _Failed from exc
            trace = HopTrace(hop, index)
            slow = asyncio.Event()
            connecting = asyncio.ensure_future(connect_hop(
                hop, index, len(self.conn.hops), self._key_for(hop), self.known_hosts,
                via=self.conns[-1] if self.conns else None, sock=sock,
                accept_new=self.accept_new, accept_keys=self.accept_keys,
                keepalive=self.conn.keepalive,
                settings=self.settings, trace=trace, key_comment=self._comment(hop),
                on_slow_signature=slow.set,
            ))
            try:
                if await _first_of(connecting, slow):
                    if not tcp_reported:
                        yield self._tcp_ok(trace, start, name)
                        tcp_reported = True
                    if not host_key_reported:
                        yield self._host_key_ok(trace, name)
                        host_key_reported = True
                    yield StepResult("ssh-auth", StepStatus.RUNNING, _ms(start),
                                     f"{name}: {self._touch_text(hop)}")
                conn, _ = await connecting
            except AgentKeyUnavailable as exc:
                yield self._fail("ssh-auth", start, f"{name}: {exc.message}",
                                 f"{ADD_HINT}; check SSH_AUTH_SOCK")
                raise _Failed from exc
            except BastionUnreachable as exc:
                if trace.tcp_at is None and not tcp_reported:
                    yield self._fail("tcp", start, exc.message, exc.hint)
                    raise _Failed from exc
                if tcp_reported:
                    yield self._fail("ssh-auth", start, exc.message, exc.hint)
                    raise _Failed from exc
                yield self._tcp_ok(trace, start, name)
                yield self._fail("host-key", start, exc.message, exc.hint)
                raise _Failed from exc
            except HostKeyProblem as exc:
                if not tcp_reported:
                    yield self._tcp_ok(trace, start, name)
                    tcp_reported = True
                unknown = isinstance(exc, HostKeyUnknown) and bool(exc.fingerprint)
                if unknown and exc.public_line and self.on_host_key and not asked:
                    asked = True
                    answer = self.on_host_key(hop, exc.fingerprint)
                    if inspect.isawaitable(answer):
                        answer = await answer
                    if answer:
                        self.known_hosts.add(hop.host, hop.port, exc.public_line)
                        prompted = True
                        continue
                message = exc.message
                if unknown and self.accept_keys:
                    given = ", ".join(sorted(self.accept_keys))
                    message += f" (not the key given with --accept-host-key: {given})"
                yield self._fail("host-key", start, message, exc.hint)
                raise _Failed from exc
            except AuthRejected as exc:
                if not tcp_reported:
                    yield self._tcp_ok(trace, start, name)
                    tcp_reported = True
                if not host_key_reported:
                    if prompted:
                        trace.host_key = "accepted"
                    yield self._host_key_ok(trace, name)
                    host_key_reported = True
                if auth_started is None:  # from the end of the handshake (monotonic clock)
                    auth_started = trace.host_key_at or time.monotonic()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    yield StepResult("ssh-auth", StepStatus.FAIL, _since(auth_started),
                                     f"{name}: {exc.message.split(': ', 1)[-1]}"
                                     + (" (gave up waiting)" if self.wait_seconds else ""),
                                     exc.hint)
                    raise _Failed from exc
                yield StepResult(
                    "ssh-auth", StepStatus.RUNNING, _since(auth_started),
                    f"{name}: key not accepted yet, retrying for {duration_words(remaining)}",
                    exc.hint,
                )
                await asyncio.sleep(min(self.settings.auth_poll_interval, remaining))
                continue
            except HopError as exc:
                yield self._fail("ssh-auth", start, exc.message, exc.hint)
                raise _Failed from exc
            finally:
                if not connecting.done():
                    connecting.cancel()
            break
        self.conns.append(conn)
        if not tcp_reported:
            yield self._tcp_ok(trace, start, name)
        if not host_key_reported:
            if prompted:
                trace.host_key = "accepted"
            yield self._host_key_ok(trace, name)
        auth_from = trace.host_key_at or trace.tcp_at or trace.started
        elapsed = (
            _since(auth_started) if auth_started is not None
            else ((trace.done_at or auth_from) - auth_from) * 1000.0
        )
        detail = f"{name}: publickey accepted for {hop.user}"
        if isinstance(self._key_for(hop), AgentKey):
            detail += " (key in your ssh-agent)"
        hint = None
        if trace.slow_signature:  # a warning: status stays ok (DESIGN.md)
            hint = (
                "this key waits for a touch on your security key at every connect"
                if self._is_security_key(hop)
                else "your ssh-agent was slow to sign: it may ask for a touch or a "
                "confirmation at every connect"
            )
        yield StepResult("ssh-auth", StepStatus.OK, elapsed, detail, hint)

    def _is_security_key(self, hop: SshEndpoint) -> bool:
        record = self._record(hop.key_id or self.conn.key_id)
        return record is not None and record.type in (KeyType.SK_ED25519, KeyType.SK_ECDSA)

    def _touch_text(self, hop: SshEndpoint) -> str:
        if self._is_security_key(hop):
            return "waiting for a touch on your security key"
        return "waiting for your ssh-agent to sign (a touch or a confirmation?)"

    def _tcp_ok(self, trace: HopTrace, start: float, name: str) -> StepResult:
        tcp_at = trace.tcp_at or time.monotonic()
        elapsed = (time.perf_counter() - start) * 1000.0 - (time.monotonic() - tcp_at) * 1000.0
        hop = trace.hop
        return StepResult("tcp", StepStatus.OK, max(elapsed, 0.0),
                          f"{name}: {hop.host}:{hop.port} open")

    def _host_key_ok(self, trace: HopTrace, name: str) -> StepResult:
        base = trace.tcp_at or trace.started
        elapsed = ((trace.host_key_at or base) - base) * 1000.0
        how = {"accepted": "new, accepted and saved"}.get(trace.host_key, "trusted")
        if trace.host_key == "accepted" and trace.fingerprint in self.accept_keys:
            how = "new, matches --accept-host-key, saved"
        return StepResult("host-key", StepStatus.OK, elapsed,
                          f"{name}: {trace.fingerprint} ({how})")

    def _key_for(self, hop: SshEndpoint) -> ClientKey:
        return self.keys[hop.key_id or self.conn.key_id]

    def _comment(self, hop: SshEndpoint) -> str:
        record = self._record(hop.key_id or self.conn.key_id)
        if record is not None:
            return record.line_comment
        # No key record to read (a bare secrets source): a key is named after its
        # first connection unless renamed.
        return f"tunnel-tui:{self.conn.name}"

    async def _channel(self) -> AsyncIterator[StepResult]:
        start = time.perf_counter()
        db = self.conn.database
        try:
            channel, _ = await asyncio.wait_for(
                self.conns[-1].create_connection(asyncssh.SSHTCPSession, db.host, db.port),
                self.settings.connect_timeout,
            )
        except asyncssh.ChannelOpenError as exc:
            error = channel_error(exc, db.host, db.port)
            yield self._fail("channel", start, error.message, error.hint)
            raise _Failed from exc
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            yield self._fail("channel", start, f"opening the channel failed: {exc}",
                             "the SSH connection dropped; try again")
            raise _Failed from exc
        channel.close()
        yield StepResult("channel", StepStatus.OK, _ms(start),
                         f"the bastion reached {db.target}")

    async def _database(self) -> AsyncIterator[StepResult]:
        db = self.conn.database
        from tunnel_tui.probes.base import probe_for

        password = self.db_password
        probe = probe_for(db.kind)
        async with temporary_forward(self.conns[-1], db.host, db.port, self.settings) as (
            port, _,
        ):
            seen = set()
            async for result in probe.check(
                host="127.0.0.1", port=port, database=db, password=password,
                timeout=self.db_timeout, name=self.conn.name,
            ):
                seen.add(result.step)
                yield result
                if result.status is StepStatus.FAIL:
                    raise _Failed
        for step in DB_STEPS:
            if step not in seen:
                yield StepResult(step, StepStatus.SKIP, detail="not checked by this probe")


def _os_text(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name does not resolve ({exc.strerror})"
    if exc.errno:
        import os

        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class _CertificateExpired(Exception):
    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


def _parse_stored(record: Key) -> Certificate:
    try:
        return parse_certificate(record.certificate)
    except KeyImportError as exc:
        raise _CertificateExpired(
            f"the stored certificate of key {record.name} cannot be read: {exc.message}",
            "import it again: tunnel-tui edit NAME --certificate FILE",
        ) from exc


def _best(certs: list[Certificate]) -> Certificate:
    """The certificate that lasts longest (an agent may hold an old and a renewed one)."""
    far = datetime.max.replace(tzinfo=UTC)
    return max(certs, key=lambda c: c.valid_before or far)


def _check_certificate(cert: Certificate, conn: Connection) -> tuple[str, str | None]:
    """(detail, warning hint) for a usable certificate; _CertificateExpired otherwise."""
    state = cert.state()
    renew = "get a new certificate from your CA"
    if state is CertificateState.EXPIRED:
        raise _CertificateExpired(
            f"the certificate {cert.key_id!r} expired ({cert.validity_text()})",
            f"{renew} (ssh-keygen -s CA -I ID -n USER -V +1d KEY.pub), then load it "
            f"(ssh-add, or tunnel-tui edit {conn.name} --certificate FILE)",
        )
    if state is CertificateState.NOT_YET_VALID:
        raise _CertificateExpired(
            f"the certificate {cert.key_id!r} is not valid yet ({cert.validity_text()})",
            "check this computer's clock, or wait until it becomes valid",
        )
    hint = None
    if state is CertificateState.EXPIRING:
        hint = f"the certificate expires soon ({cert.validity_text()}): {renew}"
    return cert.summary(), hint


async def _first_of(task: asyncio.Future[Any], event: asyncio.Event) -> bool:
    """Wait for `task` or `event`; True if the event came first (task still running)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return not task.done()


def first_failure(results: list[StepResult]) -> StepResult | None:
    return next((r for r in results if r.status is StepStatus.FAIL), None)


__all__: list[Any] = ["run", "SecretsSource", "first_failure"]
