"""validate.run with a key that lives only in a real OpenSSH ssh-agent, against real
sshd and PostgreSQL: it works; an emptied or missing agent fails at `keyring` with a
hint naming ssh-add / SSH_AUTH_SOCK; a key the bastion does not accept fails at
`ssh-auth` with the authorized_keys line; a slow signature (a touch) is said."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.ssh_agent import keygen, running_agent
from tests.validate.test_validate_sshd import assert_failed_at, by_step
from tunnel_tui.core.keys import fingerprint, parse_public_line
from tunnel_tui.core.model import Key, KeySource
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import VALIDATION_STEPS, StepStatus
from tunnel_tui.validate import run


class AgentCatalog:
    """What validation reads of the Catalog: key records, never a private key here."""

    def __init__(self, keys: dict[str, Key], db_password: str | None = None) -> None:
        self._keys = keys
        self._password = db_password

    def key(self, key_id: str) -> Key:
        return self._keys[key_id]

    def private_key(self, key_id: str) -> Secret:
        raise AssertionError("an ssh-agent key is never read from the keyring")

    def db_password(self, name: str) -> Secret | None:
        return Secret(self._password) if self._password is not None else None


def agent_key(public_line: str, key_id: str = "k-test") -> Key:
    key_type, _ = parse_public_line(public_line)
    return Key(id=key_id, name="laptop", type=key_type, public_key=public_line,
               fingerprint=fingerprint(public_line), created=datetime.now(UTC),
               source=KeySource.SSH_AGENT)


async def collect(conn, catalog, kh, sock=None, settings=FAST):
    return [r async for r in run(conn, catalog, known_hosts=kh, settings=settings,
                                 ssh_auth_sock=sock)]


def pg_conn(server, pg):
    return make_conn("pgconn", [(server.host, server.port, server.user)], (pg.host, pg.port),
                     database=pg.database, db_user=pg.user)


async def test_key_only_in_the_agent_validates_through_to_the_database(
    sshd, postgres, engine_known_hosts, ssh_agent, key_file,
):
    path, public = key_file
    ssh_agent.add(path)
    path.unlink()  # the key exists only in the agent from here on
    sshd.authorize(public)
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)

    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts,
                            ssh_agent.socket)

    steps, final = by_step(results)
    assert [r.step for r in final] == list(VALIDATION_STEPS)
    assert all(r.ok for r in final), [(r.step, r.status, r.detail, r.hint) for r in final]
    assert "ssh-agent" in steps["keyring"].detail
    assert fingerprint(public) in steps["keyring"].detail
    assert ssh_agent.socket in steps["keyring"].detail
    assert "ssh-agent" in steps["ssh-auth"].detail
    assert steps["ssh-auth"].hint is None  # no touch was needed


async def test_emptied_agent_fails_at_keyring_with_ssh_add_hint(
    sshd, postgres, engine_known_hosts, ssh_agent, key_file,
):
    path, public = key_file
    ssh_agent.add(path)
    ssh_agent.delete_all()  # ssh-add -D
    assert "no identities" in ssh_agent.listing().lower() or not ssh_agent.listing().strip()
    sshd.authorize(public)
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)

    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts,
                            ssh_agent.socket)

    failed = assert_failed_at(results, "keyring")
    assert fingerprint(public) in failed.detail
    assert "ssh-add" in failed.hint and "SSH_AUTH_SOCK" in failed.hint


async def test_unreachable_or_unset_agent_fails_at_keyring(
    sshd, postgres, engine_known_hosts, key_file, monkeypatch,
):
    _, public = key_file
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)
    with running_agent() as agent:
        gone = agent.socket
    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts, gone)
    failed = assert_failed_at(results, "keyring")
    assert gone in failed.detail and "SSH_AUTH_SOCK" in failed.hint

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts, None)
    failed = assert_failed_at(results, "keyring")
    assert "SSH_AUTH_SOCK" in failed.detail and "ssh-add" in failed.hint


async def test_agent_key_the_bastion_rejects_fails_at_ssh_auth_with_the_line(
    sshd, postgres, engine_known_hosts, ssh_agent, key_file,
):
    path, public = key_file
    ssh_agent.add(path)
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)

    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts,
                            ssh_agent.socket)

    failed = assert_failed_at(results, "ssh-auth")
    assert "authorized_keys" in failed.hint
    assert public in failed.hint


async def test_only_the_stored_key_is_offered_among_several(
    sshd, postgres, engine_known_hosts, ssh_agent, key_file,
):
    """The agent holds an authorized key too, but the connection's key is another one:
    using the agent's other keys would hide a wrong setup (and try keys at random)."""
    path, public = key_file
    other = path.with_name("authorized_other")
    other_public = keygen(other, "other")
    ssh_agent.add(other)
    ssh_agent.add(path)
    sshd.authorize(other_public)
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)

    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts,
                            ssh_agent.socket)

    assert_failed_at(results, "ssh-auth")
    assert fingerprint(other_public) not in sshd.log_text()  # never even offered


async def test_a_slow_signature_says_it_waits_for_a_touch(
    sshd, postgres, engine_known_hosts, key_file,
):
    """`ssh-add -c` makes the real agent ask (through SSH_ASKPASS, answering after
    1.5 s) before it signs: the same wait as a security key's touch, and longer than
    the connect timeout (1 s here)."""
    path, public = key_file
    sshd.authorize(public)
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)
    with running_agent(slow_confirm=1.5) as agent:
        agent.add(path, confirm=True)
        # The touch takes longer than the connect timeout: a person is not a hung server.
        settings = dataclasses.replace(FAST, slow_signature=0.3, connect_timeout=1.0)
        results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts,
                                agent.socket, settings)

    running = [r for r in results if r.step == "ssh-auth" and r.status is StepStatus.RUNNING]
    assert running and "waiting for" in running[0].detail, results
    steps, final = by_step(results)
    assert all(r.ok for r in final), [(r.step, r.status, r.detail) for r in final]
    assert steps["ssh-auth"].hint and "touch" in steps["ssh-auth"].hint
