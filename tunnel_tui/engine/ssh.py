"""SSH connections hop by hop, each host key checked against our own known_hosts.

Every hop is its own `asyncssh.connect` with `tunnel=` the previous connection
object (the first hop gets our `DirectTcp` socket). String tunnels / ProxyJump are
never used: asyncssh would give those hops ~/.ssh's keys and known_hosts instead of
ours (ASYNCSSH-NOTES §2). Nothing under ~/.ssh is read: `config=None`,
`agent_path=None`, explicit `client_keys` and `known_hosts`, and X.509 off
(`x509_trusted_certs=None`): only keys in our known_hosts are trusted.

Client keys (`ClientKey`): a private key from our keyring, optionally with an OpenSSH
user certificate, or a key in the user's ssh-agent. For the latter we open the agent at
the socket the caller gave (never asyncssh's own `agent_path`, which would offer every
key the agent holds) and offer only the identities of the stored key: its
certificates first, then the plain key, as OpenSSH does.

asyncssh raises the same HostKeyNotVerifiable for an unknown and a changed key, so
our client records the server key in `validate_host_public_key` and we classify it
with `KnownHosts.check` (ASYNCSSH-NOTES §1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncssh

from tunnel_tui.core.client_keys import CertifiedKey, ClientKey
from tunnel_tui.core.keys import authorized_keys_line
from tunnel_tui.core.model import Keepalive, SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.ssh_agent import AgentIdentity, AgentKey
from tunnel_tui.engine.asyncssh_shims import skip_aead_ignore
from tunnel_tui.engine.errors import (
    POLICY_HINT,
    AgentKeyUnavailable,
    AuthRejected,
    BastionUnreachable,
    HopError,
    HostKeyChanged,
    HostKeyUnknown,
    KeyMissing,
)
from tunnel_tui.engine.settings import EngineSettings
from tunnel_tui.engine.transport import DirectTcp

log = logging.getLogger(__name__)


class KnownHostsLike(Protocol):
    """What we need of `core.known_hosts.KnownHosts`."""

    def check(self, host: str, port: int, public_line: str) -> Any: ...

    def trusted_keys(self, host: str, port: int) -> list[str]: ...

    def add(self, host: str, port: int, public_line: str) -> Any: ...


def host_key_status(known_hosts: KnownHostsLike, host: str, port: int, line: str) -> str:
    """"trusted", "unknown" or "changed" (works with any enum spelling of the status)."""
    status = known_hosts.check(host, port, line)
    text = str(getattr(status, "value", status)).lower()
    for word in ("trusted", "unknown", "changed"):
        if word in text or word in str(getattr(status, "name", "")).lower():
            return word
    raise ValueError(f"unexpected host key status {status!r}")


@dataclass
class HopTrace:
    """What happened on one hop, for the validation log."""

    hop: SshEndpoint
    index: int
    started: float = field(default_factory=time.monotonic)
    tcp_at: float | None = None  # socket (or previous hop's channel) open
    host_key_at: float | None = None  # host key decided (untrusted path) or handshake done
    done_at: float | None = None  # authenticated
    fingerprint: str = ""
    public_line: str = ""
    host_key: str = ""  # "trusted", "accepted", "unknown", "changed"
    slow_signature: bool = False  # the ssh-agent took long to sign (a touch, a confirm)
    error: str = ""  # why meet_host_keys could not pass this hop


def hop_label(hop: SshEndpoint, index: int, count: int) -> str:
    role = "bastion" if index == count - 1 else f"jump host {index + 1}"
    return f"{role} {hop.display}"


def import_key(secret: Secret) -> asyncssh.SSHKey:
    return asyncssh.import_private_key(secret.reveal())


class _TimedTunnel:
    """Wraps the `tunnel=` object to time the transport and tell its failures apart."""

    def __init__(self, inner: Any, trace: HopTrace) -> None:
        self._inner = inner
        self._trace = trace

    async def create_connection(
        self, factory: Callable[[], Any], host: str, port: int
    ) -> tuple[Any, Any]:
        result = await self._inner.create_connection(factory, host, port)
        self._trace.tcp_at = time.monotonic()
        return tuple(result)


class _Client(asyncssh.SSHClient):
    def __init__(
        self, hop: SshEndpoint, known_hosts: KnownHostsLike, trace: HopTrace, accept_new: bool,
        keys: list[Any] | None = None, accept_keys: Collection[str] = (),
    ) -> None:
        self._keys = keys or None
        self._accept_keys = frozenset(accept_keys)
        self._conn: asyncssh.SSHClientConnection | None = None
        self._hop = hop
        self._known_hosts = known_hosts
        self._trace = trace
        self._accept_new = accept_new
        self.on_lost: Callable[[Exception], None] | None = None
        self.direct: DirectTcp | None = None  # the first hop's own socket

    # A plain def on purpose: asyncssh treats a returned coroutine as "true" (NOTES §1).
    def validate_host_public_key(
        self, host: str, addr: tuple[str, int] | str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        line = key.export_public_key().decode().split("\n")[0].strip()
        trace = self._trace
        trace.public_line = " ".join(line.split()[:2])
        trace.fingerprint = key.get_fingerprint("sha256")
        trace.host_key_at = time.monotonic()
        status = host_key_status(self._known_hosts, self._hop.host, self._hop.port, line)
        if status == "trusted":  # e.g. trusted through ~/.ssh/known_hosts only
            trace.host_key = "trusted"
            return True
        # An unknown key is trusted only with consent: to exactly the fingerprint the
        # user checked (--accept-host-key, the app's dialog), or to any (scripts' TOFU).
        if status == "unknown" and (self._accept_new or trace.fingerprint in self._accept_keys):
            self._known_hosts.add(self._hop.host, self._hop.port, trace.public_line)
            trace.host_key = "accepted"
            return True
        trace.host_key = status
        return False

    # The key is handed over here rather than as `client_keys`, so we learn when the
    # key exchange (and so the host key check) is done: the validation log times it.
    def public_key_auth_requested(self) -> list[Any] | None:
        key, self._keys = self._keys, None
        trace = self._trace
        if key is not None and trace.host_key_at is None:
            trace.host_key_at = time.monotonic()
        if not trace.fingerprint and self._conn is not None:
            # Trusted keys never reach validate_host_public_key: record it here so a
            # failed auth still shows which host key was checked.
            server_key = self._conn.get_server_host_key()
            if server_key is not None:
                trace.fingerprint = server_key.get_fingerprint("sha256")
                trace.public_line = " ".join(server_key.export_public_key().decode().split()[:2])
                trace.host_key = "trusted"
        return key

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self._conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.on_lost is not None:
            self.on_lost(exc)


def _trusted(known_hosts: KnownHostsLike, hop: SshEndpoint) -> list[asyncssh.SSHKey]:
    keys = []
    for line in known_hosts.trusted_keys(hop.host, hop.port):
        try:
            keys.append(asyncssh.import_public_key(line))
        except (asyncssh.KeyImportError, ValueError):
            log.debug("skipping a trusted key of %s that asyncssh cannot read", hop.display)
    return keys


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name does not resolve ({exc.strerror})"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # asyncio's text adds "Connect call failed"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def unreachable_hint(hop: SshEndpoint, index: int) -> str:
    if index == 0:
        return (
            f"check that {hop.host} is the right host, that sshd listens on port {hop.port} "
            "and that no firewall or VPN is in the way"
        )
    return (
        f"check that the previous hop can reach {hop.host}:{hop.port} (name, port, and "
        "AllowTcpForwarding on the previous hop)"
    )


def auth_hint(
    hop: SshEndpoint, public_line: str, comment: str = "tunnel-tui", *,
    certificate: bool = False,
) -> str:
    line = authorized_keys_line(public_line, comment)
    hint = f"add this public key to ~{hop.user}/.ssh/authorized_keys on {hop.host}: {line}"
    if certificate:
        hint += (
            f" (or, for the certificate: check its principals include {hop.user} and that "
            f"{hop.host} trusts its CA in TrustedUserCAKeys)"
        )
    return hint


@dataclass
class _Offer:
    """The key pairs one hop offers, and the agent connection they need."""

    keypairs: list[Any]
    public_line: str  # the plain key, for the authorized_keys hint
    certificate: bool = False
    agent: Any = None  # asyncssh.SSHAgentClient, closed once auth is over

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None


async def _offer(
    key: ClientKey, settings: EngineSettings, on_slow_signature: Callable[[], None] | None,
) -> _Offer:
    if isinstance(key, AgentKey):
        return await _agent_offer(key, settings, on_slow_signature)
    if isinstance(key, CertifiedKey):
        private = import_key(key.private)
        public = " ".join(private.export_public_key().decode().split()[:2])
        try:
            cert = asyncssh.import_certificate(key.certificate)
        except (asyncssh.KeyImportError, ValueError):
            log.warning("the stored certificate cannot be read; using the plain key")
            return _Offer([private], public)
        return _Offer([(private, cert), private], public, certificate=True)
    private = import_key(key)
    return _Offer([private], " ".join(private.export_public_key().decode().split()[:2]))


async def _agent_offer(
    key: AgentKey, settings: EngineSettings, on_slow_signature: Callable[[], None] | None,
) -> _Offer:
    path = key.socket_path
    try:
        agent = await asyncio.wait_for(asyncssh.connect_agent(path), settings.connect_timeout)
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        code = getattr(exc, "errno", None)
        why = os.strerror(code).lower() if isinstance(code, int) else "no answer"
        raise AgentKeyUnavailable(
            f"the ssh-agent at {path} is gone ({why})", socket_path=path, gone=True,
            hint="start your agent and ssh-add the key, or run from a terminal whose "
            "SSH_AUTH_SOCK points at it",
        ) from exc
    try:
        pairs = await asyncio.wait_for(agent.get_keys(), settings.connect_timeout)
    except (OSError, TimeoutError, ValueError, asyncssh.Error) as exc:
        agent.close()
        raise AgentKeyUnavailable(
            f"the ssh-agent at {path} did not list its keys", socket_path=path, gone=True,
            hint="check your agent (ssh-add -l) and SSH_AUTH_SOCK",
        ) from exc
    wanted = " ".join(key.public_key.split()[:2])
    matching = [p for p in pairs if AgentIdentity(p.public_data, "").key_public_line == wanted]
    if not matching:
        agent.close()
        raise AgentKeyUnavailable(
            f"the ssh-agent at {path} does not hold key {key.fingerprint or wanted}",
            socket_path=path, gone=False,
            hint="load it into your agent (ssh-add, or unlock it in your password manager)",
        )
    matching.sort(key=lambda p: not p.has_cert)  # certificates first, as OpenSSH does
    if on_slow_signature is not None:
        for pair in matching:
            _watch_signing(pair, on_slow_signature, settings.slow_signature)
    has_cert = any(p.has_cert for p in matching)
    return _Offer(matching, wanted, certificate=has_cert, agent=agent)


def _watch_signing(pair: Any, on_slow: Callable[[], None], threshold: float) -> None:
    """Call `on_slow()` when the agent takes longer than `threshold` to sign: a security
    key waiting for a touch, or an agent asking for confirmation."""
    inner = pair.sign_async

    async def sign_async(data: bytes) -> bytes:
        task: asyncio.Future[bytes] = asyncio.ensure_future(inner(data))
        try:
            return await asyncio.wait_for(asyncio.shield(task), threshold)
        except TimeoutError:
            on_slow()
            return await task
        finally:
            if not task.done():
                task.cancel()

    pair.sign_async = sign_async  # asyncssh looks the method up on the instance


async def connect_hop(
    hop: SshEndpoint,
    index: int,
    count: int,
    key: ClientKey,
    known_hosts: KnownHostsLike,
    *,
    via: asyncssh.SSHClientConnection | None = None,
    sock: socket.socket | None = None,
    accept_new: bool = False,
    accept_keys: Collection[str] = (),
    keepalive: Keepalive | None = None,
    settings: EngineSettings | None = None,
    trace: HopTrace | None = None,
    key_comment: str = "tunnel-tui",
    on_slow_signature: Callable[[], None] | None = None,
) -> tuple[asyncssh.SSHClientConnection, _Client]:
    """One hop; raises BastionUnreachable, HostKeyUnknown/Changed, AuthRejected, or
    AgentKeyUnavailable (before any network traffic) for an ssh-agent key.
    `on_slow_signature()` is called if the ssh-agent is slow to sign (a touch needed).

    An unknown host key is saved and trusted when `accept_new` (any key) or when its
    SHA256 fingerprint is in `accept_keys` (exactly the keys a person checked)."""
    settings = settings or EngineSettings()
    keepalive = keepalive or Keepalive()
    trace = trace or HopTrace(hop, index)
    label = hop_label(hop, index, count)
    inner: Any = via if via is not None else DirectTcp(
        timeout=settings.connect_timeout, quickack=settings.quickack,
        coalesce=settings.coalesce_writes, cork=settings.cork_writes, sock=sock,
    )
    if on_slow_signature is not None:
        outer = on_slow_signature

        def on_slow_signature() -> None:
            trace.slow_signature = True
            outer()

    offer = await _offer(key, settings, on_slow_signature)
    client = _Client(hop, known_hosts, trace, accept_new, offer.keypairs, accept_keys)
    if isinstance(inner, DirectTcp):
        client.direct = inner
    try:
        conn = await _within_connect_timeout(
            asyncssh.connect(
                hop.host,
                hop.port,
                tunnel=_TimedTunnel(inner, trace),
                username=hop.user,
                client_factory=lambda: client,
                known_hosts=(_trusted(known_hosts, hop), [], []),
                client_keys=None,  # given by _Client.public_key_auth_requested
                public_key_auth=True,
                agent_path=None,
                config=None,
                passphrase=None,
                password_auth=False,
                kbdint_auth=False,
                host_based_auth=False,
                gss_auth=False,
                keepalive_interval=keepalive.interval,
                keepalive_count_max=keepalive.count_max,
                encryption_algs=list(_ciphers(settings)),
                window=settings.window,
                max_pktsize=settings.max_pktsize,
                server_host_keys_handler=None,
                # No X.509: asyncssh would otherwise trust ~/.ssh/ca-bundle.crt and
                # ~/.ssh/crt/, accept a host certificate from those CAs without asking
                # us (bypassing our known_hosts), and crash with a NameError when
                # pyOpenSSL is missing (issue 14, finding 1).
                x509_trusted_certs=None,
                x509_trusted_cert_paths=[],
            ),
            settings, trace,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise _host_key_error(hop, index, label, trace) from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthRejected(
            f"{label}: publickey rejected for user {hop.user}",
            hop=hop, hop_index=index,
            hint=auth_hint(hop, offer.public_line, key_comment, certificate=offer.certificate),
        ) from exc
    except asyncssh.ChannelOpenError as exc:  # the previous hop could not open the way
        if exc.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
            raise BastionUnreachable(
                f"{label}: the previous hop refused to forward to {hop.host}:{hop.port} "
                "(its policy forbids it)",
                hop=hop, hop_index=index, hint=POLICY_HINT.replace("bastion", "jump host"),
            ) from exc
        raise BastionUnreachable(
            f"{label}: the previous hop could not reach {hop.host}:{hop.port}: "
            f"{(exc.reason or 'open failed').lower()}",
            hop=hop, hop_index=index, hint=unreachable_hint(hop, index),
        ) from exc
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        dropped = not isinstance(exc, TimeoutError)  # a hung server is not a key problem
        if (dropped and trace.tcp_at is not None and _trusted(known_hosts, hop)
                and not trace.fingerprint):
            # A handshake the server dropped, with a key on file, may be a changed key
            # *type*: asyncssh only offers the recorded types (NOTES §1).
            changed = await _changed_key_type(hop, index, label, via, known_hosts, settings)
            if changed is not None:
                raise changed from exc
        what = "no SSH answer" if trace.tcp_at is not None else "cannot connect"
        if isinstance(exc, asyncssh.Error):
            cause = exc.reason or type(exc).__name__
        else:
            cause = _describe_os_error(exc)
        raise BastionUnreachable(
            f"{label}: {what}: {cause}", hop=hop, hop_index=index,
            hint=unreachable_hint(hop, index),
        ) from exc
    finally:
        offer.close()
    trace.done_at = time.monotonic()
    if not trace.fingerprint:
        server_key = conn.get_server_host_key()
        if server_key is not None:
            trace.fingerprint = server_key.get_fingerprint("sha256")
            trace.public_line = " ".join(
                server_key.export_public_key().decode().split()[:2]
            )
        trace.host_key = "trusted"
    if settings.skip_aead_ignore:  # asyncssh's per-packet IGNORE, for AEAD ciphers
        skip_aead_ignore(conn)
    return conn, client


async def _within_connect_timeout(
    connecting: Awaitable[asyncssh.SSHClientConnection],
    settings: EngineSettings, trace: HopTrace,
) -> asyncssh.SSHClientConnection:
    """`connect_timeout`, plus `touch_timeout` once the ssh-agent is waiting for a touch
    (or a confirmation): a person at a security key is not a hung server."""
    task = asyncio.ensure_future(connecting)
    try:
        done, _ = await asyncio.wait({task}, timeout=settings.connect_timeout)
        if not done and trace.slow_signature:
            done, _ = await asyncio.wait({task}, timeout=settings.touch_timeout)
        if not done:
            raise TimeoutError
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _ciphers(settings: EngineSettings) -> tuple[str, ...]:
    return settings.encryption_algs


def _host_key_error(hop: SshEndpoint, index: int, label: str, trace: HopTrace) -> HopError:
    fp = trace.fingerprint or "unknown fingerprint"
    if trace.host_key == "changed":
        return HostKeyChanged(
            f"{label}: HOST KEY CHANGED (now {fp}); someone may be intercepting the "
            "connection (man-in-the-middle), or the server was reinstalled",
            hop=hop, hop_index=index, fingerprint=trace.fingerprint,
            public_line=trace.public_line,
            hint=(
                "do not connect until the server's admin confirms the new fingerprint; then "
                f"`tunnel-tui hosts forget {hop.host}` and validate again"
            ),
        )
    if not trace.fingerprint:  # refused before we saw a plain key (e.g. a certificate)
        return HostKeyUnknown(
            f"{label}: the host key could not be checked (the server offered no plain key "
            "we can pin)",
            hop=hop, hop_index=index,
            hint="ask the server's admin which host key it presents; nothing was trusted",
        )
    return HostKeyUnknown(
        f"{label}: unknown host key {fp}",
        hop=hop, hop_index=index, fingerprint=trace.fingerprint, public_line=trace.public_line,
        hint=(
            f"compare {fp} with the server's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub "
            f"on it), then trust exactly that key: --accept-host-key {fp}"
        ),
    )


async def _changed_key_type(
    hop: SshEndpoint, index: int, label: str,
    via: asyncssh.SSHClientConnection | None, known_hosts: KnownHostsLike,
    settings: EngineSettings,
) -> HopError | None:
    tunnel: Any = via if via is not None else DirectTcp(timeout=settings.connect_timeout)
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(
                hop.host, hop.port,
                tunnel=tunnel,
                config=None,
            ),
            settings.connect_timeout,
        )
    except (TimeoutError, OSError, asyncssh.Error):
        return None
    if key is None:
        return None
    line = " ".join(key.export_public_key().decode().split()[:2])
    if host_key_status(known_hosts, hop.host, hop.port, line) != "changed":
        return None
    trace = HopTrace(hop, index, fingerprint=key.get_fingerprint("sha256"), public_line=line,
                     host_key="changed")
    return _host_key_error(hop, index, label, trace)


def _key_id_for(
    hop: SshEndpoint, keys: Mapping[str, ClientKey], key_id: str | None
) -> str | None:
    """The key a hop logs in with: its own, else the connection's, else the only one."""
    return hop.key_id or key_id or (next(iter(keys)) if len(keys) == 1 else None)


def key_for(hop: SshEndpoint, keys: Mapping[str, ClientKey], key_id: str | None) -> ClientKey:
    wanted = _key_id_for(hop, keys, key_id)
    if wanted is None or wanted not in keys:
        raise KeyMissing(
            f"no private key for {hop.display} (key {wanted or '?'})",
            hint="check the key is in the keyring: tunnel-tui validate NAME",
        )
    return keys[wanted]


async def connect_hops(
    hops: Sequence[SshEndpoint],
    keys: Mapping[str, ClientKey],
    known_hosts: KnownHostsLike,
    *,
    key_id: str | None = None,
    accept_new: bool = False,
    accept_keys: Collection[str] = (),
    keepalive: Keepalive | None = None,
    settings: EngineSettings | None = None,
    on_lost: Callable[[int, Exception], None] | None = None,
    traces: list[HopTrace] | None = None,
    writers: list[Any] | None = None,
    key_comments: Mapping[str, str] | None = None,
) -> list[asyncssh.SSHClientConnection]:
    """Connect every hop in order (jump hosts first, the bastion last).

    Returns the connections; closing the first closes them all. On failure every
    connection opened so far is closed and the hop's typed error is raised.
    `on_lost(hop_index, exc)` is called when a hop dies (keepalive, reset).
    `writers` receives the first hop's socket write joiner (`CoalescingTransport`,
    when corking is on): forwards cork it around their channel writes.
    `key_comments` (key id -> `tunnel-tui:<key name>`) ends the authorized_keys line
    that a rejected key's hint shows.
    """
    conns: list[asyncssh.SSHClientConnection] = []
    try:
        for index, hop in enumerate(hops):
            trace = HopTrace(hop, index)
            if traces is not None:
                traces.append(trace)
            conn, client = await connect_hop(
                hop, index, len(hops), key_for(hop, keys, key_id), known_hosts,
                via=conns[-1] if conns else None, accept_new=accept_new,
                accept_keys=accept_keys, keepalive=keepalive, settings=settings, trace=trace,
                key_comment=_comment_for(hop, keys, key_id, key_comments or {}),
            )
            if on_lost is not None:
                client.on_lost = _bind_lost(on_lost, index)
            if writers is not None and client.direct is not None and client.direct.writer:
                writers.append(client.direct.writer)
            conns.append(conn)
    except BaseException:
        await close_all(conns)
        raise
    return conns


def _comment_for(
    hop: SshEndpoint, keys: Mapping[str, ClientKey], key_id: str | None,
    comments: Mapping[str, str],
) -> str:
    return comments.get(_key_id_for(hop, keys, key_id) or "", "tunnel-tui")


def _bind_lost(
    on_lost: Callable[[int, Exception], None], index: int
) -> Callable[[Exception], None]:
    return lambda exc: on_lost(index, exc)


async def meet_host_keys(
    hops: Sequence[SshEndpoint],
    keys: Mapping[str, ClientKey],
    known_hosts: KnownHostsLike,
    *,
    key_id: str | None = None,
    accept_new: bool = False,
    accept_keys: Collection[str] = (),
    settings: EngineSettings | None = None,
) -> list[HopTrace]:
    """Meet each hop's host key, saving an unknown one only with consent (as connect),
    then close. Stops at the first hop that cannot be passed: its trace tells why
    (`host_key` "" = not reached). An auth failure does not matter here: the host key
    is decided before auth, so a key not yet installed still lets hop 1 be checked."""
    traces: list[HopTrace] = []
    conns: list[asyncssh.SSHClientConnection] = []
    try:
        for index, hop in enumerate(hops):
            trace = HopTrace(hop, index)
            traces.append(trace)
            try:
                conn, _ = await connect_hop(
                    hop, index, len(hops), key_for(hop, keys, key_id), known_hosts,
                    via=conns[-1] if conns else None, accept_new=accept_new,
                    accept_keys=accept_keys, settings=settings, trace=trace,
                )
            except HopError as exc:
                trace.error = exc.message
                break
            conns.append(conn)
    finally:
        await close_all(conns)
    return traces


async def close_all(conns: Sequence[asyncssh.SSHClientConnection]) -> None:
    for conn in reversed(conns):
        conn.close()
    for conn in reversed(conns):
        try:
            await asyncio.wait_for(conn.wait_closed(), 5.0)
        except (TimeoutError, OSError, asyncssh.Error):
            pass
