"""OpenSSH user certificates against a real sshd that trusts a test CA
(`TrustedUserCAKeys`), the key itself in no authorized_keys: a valid certificate
works (imported next to a keyring key, or held by a real ssh-agent), an expired one
fails with a clear hint, one that expires within 24 h warns (ok with a hint)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from tests.fixtures.engine import trust
from tests.validate.test_ssh_agent_validate import AgentCatalog, agent_key, collect, pg_conn
from tests.validate.test_validate_sshd import assert_failed_at, by_step
from tunnel_tui.core.keys import fingerprint, parse_public_line
from tunnel_tui.core.model import Key
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepStatus


class KeyringCatalog(AgentCatalog):
    """A keyring key (private key in the store) with a stored certificate."""

    def __init__(self, keys: dict[str, Key], private: dict[str, str], password: str) -> None:
        super().__init__(keys, password)
        self._private = private

    def private_key(self, key_id: str) -> Secret:
        return Secret(self._private[key_id])


@pytest.fixture
def ca_bastion(sshd_factory, user_ca, engine_known_hosts):
    server = sshd_factory({"TrustedUserCAKeys": str(user_ca.public_path)})
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    return server


def keyring_key(public: str, certificate: str = "") -> Key:
    key_type, _ = parse_public_line(public)
    return Key(id="k-test", name="work", type=key_type, public_key=public,
               fingerprint=fingerprint(public), created=datetime.now(UTC),
               certificate=" ".join(certificate.split()[:2]))


async def with_imported_certificate(validity, ca_bastion, postgres, user_ca, key_file,
                                    known_hosts):
    """Validate through `ca_bastion` with `key_file` imported (a keyring key) and a
    certificate for the bastion's user, valid `validity` (ssh-keygen -V)."""
    path, public = key_file
    cert = user_ca.sign(path.with_name(path.name + ".pub"), [ca_bastion.user], validity)
    catalog = KeyringCatalog({"k-test": keyring_key(public, cert.read_text())},
                             {"k-test": path.read_text()}, postgres.password)
    return await collect(pg_conn(ca_bastion, postgres), catalog, known_hosts)


async def test_imported_certificate_valid_works(ca_bastion, postgres, user_ca, key_file,
                                                engine_known_hosts):
    results = await with_imported_certificate("-5m:+2d", ca_bastion, postgres, user_ca, key_file,
                                              engine_known_hosts)

    steps, final = by_step(results)
    assert all(r.ok for r in final), [(r.step, r.status, r.detail, r.hint) for r in final]
    assert ca_bastion.user in steps["keyring"].detail  # the principal
    assert "certificate" in steps["keyring"].detail
    assert steps["keyring"].hint is None
    assert "Accepted publickey" in ca_bastion.log_text()
    assert "CERT" in ca_bastion.log_text()  # sshd took the certificate, not a plain key


async def test_expired_certificate_fails_with_a_clear_hint(ca_bastion, postgres, user_ca,
                                                           key_file, engine_known_hosts):
    results = await with_imported_certificate("20200101:20200102", ca_bastion, postgres,
                                              user_ca, key_file, engine_known_hosts)

    failed = assert_failed_at(results, "keyring")
    assert "expired" in failed.detail and "2020-01-02" in failed.detail
    assert "new certificate" in failed.hint and "--certificate" in failed.hint


async def test_nearly_expired_certificate_warns_and_passes(ca_bastion, postgres, user_ca,
                                                           key_file, engine_known_hosts):
    results = await with_imported_certificate("-5m:+1h", ca_bastion, postgres, user_ca, key_file,
                                              engine_known_hosts)

    steps, final = by_step(results)
    assert all(r.ok for r in final), [(r.step, r.status, r.detail) for r in final]
    assert steps["keyring"].status is StepStatus.OK
    assert steps["keyring"].hint and "expires soon" in steps["keyring"].hint
    assert "expires in" in steps["keyring"].detail


async def test_certificate_held_by_the_agent_works_and_is_shown(
    ca_bastion, postgres, user_ca, key_file, engine_known_hosts, ssh_agent,
):
    path, public = key_file
    user_ca.sign(path.with_name(path.name + ".pub"), [ca_bastion.user, "deploy"], "-5m:+3h")
    ssh_agent.add(path)  # ssh-add loads id_ed25519-cert.pub along with the key
    assert ssh_agent.listing().count("SHA256:") == 2
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)

    results = await collect(pg_conn(ca_bastion, postgres), catalog, engine_known_hosts,
                             ssh_agent.socket)

    steps, final = by_step(results)
    assert all(r.ok for r in final), [(r.step, r.status, r.detail) for r in final]
    keyring = steps["keyring"]
    assert f"{ca_bastion.user}, deploy" in keyring.detail and "ssh-agent" in keyring.detail
    assert keyring.hint and "expires soon" in keyring.hint


async def test_agent_certificate_expired_fails(ca_bastion, postgres, user_ca, key_file,
                                               engine_known_hosts, ssh_agent):
    path, public = key_file
    user_ca.sign(path.with_name(path.name + ".pub"), [ca_bastion.user], "20200101:20200102")
    ssh_agent.add(path)
    catalog = AgentCatalog({"k-test": agent_key(public)}, postgres.password)

    results = await collect(pg_conn(ca_bastion, postgres), catalog, engine_known_hosts,
                             ssh_agent.socket)

    failed = assert_failed_at(results, "keyring")
    assert "expired" in failed.detail and "ssh-add" in failed.hint


async def test_certificate_for_another_user_fails_at_ssh_auth(
    ca_bastion, postgres, user_ca, key_file, engine_known_hosts,
):
    path, public = key_file
    cert = user_ca.sign(path.with_name(path.name + ".pub"), ["someone-else"], "-5m:+2d")
    key = dataclasses.replace(keyring_key(public, cert.read_text()))
    catalog = KeyringCatalog({"k-test": key}, {"k-test": path.read_text()}, postgres.password)

    results = await collect(pg_conn(ca_bastion, postgres), catalog, engine_known_hosts)

    failed = assert_failed_at(results, "ssh-auth")
    assert "principals" in failed.hint and "TrustedUserCAKeys" in failed.hint
    assert public in failed.hint  # the authorized_keys way is still offered
