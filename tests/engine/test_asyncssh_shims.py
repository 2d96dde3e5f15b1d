"""The per-packet SSH_MSG_IGNORE shim (engine/asyncssh_shims.py): counted on the wire.

An in-process asyncssh server counts the IGNORE packets it receives while a client
sends data: with an AEAD cipher and the shim none arrive, without the shim (or with
a non-AEAD cipher) one arrives per data packet. The data arrives byte-exact either
way. If asyncssh changes the wrapped method, the first test fails: re-check the
shim against the new source (or drop it if upstream made the IGNORE optional), then
update SEND_PACKET_SHA256.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest
from asyncssh.channel import SSHChannel
from asyncssh.constants import MSG_IGNORE

from tests.fixtures.echo import echo_through
from tests.fixtures.engine import FAST, make_conn, trust
from tunnel_tui.core.secret import Secret
from tunnel_tui.engine import TunnelEngine
from tunnel_tui.engine import asyncssh_shims as shims

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PACKETS = len(PAYLOAD) // 32768  # data packets at max_pktsize 32 KiB


def test_the_wrapped_asyncssh_method_is_the_known_one() -> None:
    assert shims.source_sha256() == shims.SEND_PACKET_SHA256, (
        f"asyncssh {asyncssh.__version__} changed SSHConnection.send_packet: check the "
        "shim in tunnel_tui/engine/asyncssh_shims.py against it"
    )
    assert shims.supported()
    assert shims.source_sha256(SSHChannel._deliver_data) == shims.DELIVER_DATA_SHA256, (
        f"asyncssh {asyncssh.__version__} changed SSHChannel._deliver_data (window "
        "top-ups): check grow_window in tunnel_tui/engine/asyncssh_shims.py against it"
    )
    assert shims.window_supported()


class _Counting(asyncssh.SSHServer):
    def __init__(self, counts: dict[int, int]) -> None:
        self.counts = counts

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        logged = conn.log_received_packet  # called for every packet it receives
        counts = self.counts

        def count(pkttype: int, *args: Any, **kwargs: Any) -> None:
            counts[pkttype] = counts.get(pkttype, 0) + 1
            logged(pkttype, *args, **kwargs)

        conn.log_received_packet = count  # type: ignore[method-assign]

    def begin_auth(self, username: str) -> bool:
        return False  # no auth needed: a test server on loopback


async def _digest(process: asyncssh.SSHServerProcess[bytes]) -> None:
    data = await process.stdin.read()
    process.stdout.write(hashlib.sha256(data).hexdigest().encode())
    process.exit(0)


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, dict[int, int]]]:
    counts: dict[int, int] = {}
    acceptor = await asyncssh.create_server(
        lambda: _Counting(counts), "127.0.0.1", 0,
        server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
        process_factory=_digest, encoding=None,
        encryption_algs=["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com",
                         "aes128-ctr"],
    )  # fmt: skip
    try:
        yield acceptor.sockets[0].getsockname()[1], counts
    finally:
        acceptor.close()
        await acceptor.wait_closed()


async def _send(port: int, counts: dict[int, int], cipher: str, shim: bool) -> int:
    """IGNORE packets the server received while PAYLOAD was sent (32 data packets)."""
    async with asyncssh.connect(
        "127.0.0.1", port, known_hosts=None, username="t", client_keys=None,
        agent_path=None, config=None, encryption_algs=[cipher], max_pktsize=32768,
    ) as conn:  # fmt: skip
        assert conn.get_extra_info("send_cipher") == cipher
        if shim:
            assert shims.skip_aead_ignore(conn)
        counts.clear()
        result = await asyncio.wait_for(
            conn.run("digest", input=PAYLOAD, encoding=None), 20
        )
        assert result.stdout == hashlib.sha256(PAYLOAD).hexdigest().encode()
        return counts.get(MSG_IGNORE, 0)


@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"])
async def test_no_ignore_packets_with_an_aead_cipher(server, cipher: str) -> None:
    port, counts = server
    assert await _send(port, counts, cipher, shim=True) == 0


async def test_asyncssh_sends_one_per_packet_without_the_shim(server) -> None:
    port, counts = server
    # One per data packet: the behaviour the shim removes (an upstream fix ends this).
    assert await _send(port, counts, "aes128-gcm@openssh.com", shim=False) >= PACKETS


async def test_non_aead_ciphers_keep_their_ignore_packets(server) -> None:
    port, counts = server
    assert await _send(port, counts, "aes128-ctr", shim=True) >= PACKETS


@pytest.mark.parametrize("skip", [True, False])
async def test_engine_links_send_no_ignore(
    skip: bool, asyncssh_bastion, echo_server, engine_known_hosts
) -> None:
    """Through the engine (skip_aead_ignore, the default): a forward's data goes
    without IGNOREs; with the setting off, asyncssh's one per packet is back."""
    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    conn = make_conn("t1", [(asyncssh_bastion.host, asyncssh_bastion.port, asyncssh_bastion.user)],
                     ("127.0.0.1", echo_server.port))
    settings = dataclasses.replace(FAST, skip_aead_ignore=skip, max_pktsize=32768)
    engine = TunnelEngine(engine_known_hosts, settings)
    counts: dict[int, int] = {}
    try:
        status = await engine.start(conn, keys)
        for server_conn in list(asyncssh_bastion._conns):  # the bastion's side of the link
            _Counting(counts).connection_made(server_conn)
        assert await echo_through(status.local_port, PAYLOAD, timeout=10) == PAYLOAD
    finally:
        await engine.aclose()
    if skip:
        assert counts.get(MSG_IGNORE, 0) == 0
    else:
        assert counts.get(MSG_IGNORE, 0) >= PACKETS
