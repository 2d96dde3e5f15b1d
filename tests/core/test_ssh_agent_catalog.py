"""The catalog with ssh-agent keys and certificates: public data only in the config,
the keyring never touched, a certificate checked against its key; and the identity
listing of a real OpenSSH ssh-agent."""

from __future__ import annotations

import subprocess

import pytest

from tests.fixtures.binaries import require_binary
from tests.fixtures.ssh_agent import keygen, running_agent
from tunnel_tui.core import paths
from tunnel_tui.core.catalog import AgentKeyChoice, Catalog, ReuseKey
from tunnel_tui.core.client_keys import resolve
from tunnel_tui.core.errors import KeyImportError, UsageError
from tunnel_tui.core.keys import fingerprint
from tunnel_tui.core.model import KeySource
from tunnel_tui.core.ssh_agent import AgentKey, AgentUnavailable, list_identities, pick

DB = "postgresql://app@db.internal:5432/app"
SSH = "ssh://tunnel@bastion.example:22"


class NoKeyring:
    backend_name = "no keyring"

    def get(self, name):
        raise AssertionError(f"the keyring was read ({name})")

    def set(self, name, value):
        raise AssertionError(f"the keyring was written ({name})")

    def delete(self, name):
        raise AssertionError(f"the keyring was changed ({name})")


def test_agent_key_is_stored_as_public_data_only(key_file):
    path, public = key_file
    catalog = Catalog(secrets=NoKeyring())
    result = catalog.add("prod", DB, SSH, key=AgentKeyChoice(public))
    key = result.key
    assert key.source is KeySource.SSH_AGENT and key.in_agent
    assert key.public_key == public and key.fingerprint == fingerprint(public)
    assert not result.generated
    text = paths.config_path().read_text()
    assert 'source = "ssh-agent"' in text
    assert "PRIVATE" not in text
    # A second connection with the same agent key shares the record.
    again = catalog.add("stage", DB, "ssh://tunnel@bastion2.example", key=AgentKeyChoice(public))
    assert again.key.id == key.id
    with pytest.raises(UsageError, match="lives in your ssh-agent"):
        catalog.private_key(key.id)
    with pytest.raises(AgentUnavailable, match="SSH_AUTH_SOCK"):
        catalog.client_key(key.id, "")
    assert catalog.client_key(key.id, "/run/user/1/agent.sock") == AgentKey(
        "/run/user/1/agent.sock", public, fingerprint(public))


def test_certificate_is_checked_and_stored_with_its_key(key_file, user_ca, tmp_path):
    path, public = key_file
    cert = user_ca.sign(path.with_name(path.name + ".pub"), ["tunnel"], "+1d").read_text()
    other_path = tmp_path / "other"
    other = keygen(other_path, "x")
    catalog = Catalog(secrets=NoKeyring())
    catalog.add("prod", DB, SSH, key=AgentKeyChoice(other))
    with pytest.raises(KeyImportError, match="another key"):
        catalog.edit("prod", certificate=cert)
    before = paths.config_path().read_bytes()
    with pytest.raises(KeyImportError):
        catalog.add("x", DB, SSH, key=AgentKeyChoice(other), certificate=cert)
    assert paths.config_path().read_bytes() == before  # nothing written
    result = catalog.edit("prod", key=AgentKeyChoice(public), certificate=cert)
    assert result.key.certificate == " ".join(cert.split()[:2])
    assert catalog.key(result.key.id).certificate == result.key.certificate
    # Reusing the key keeps its certificate; a keyring key resolves to CertifiedKey.
    shared = catalog.add("stage", DB, SSH, key=ReuseKey(result.key.id))
    assert shared.key.certificate == result.key.certificate
    assert isinstance(resolve(shared.key, lambda _: None, "/sock"), AgentKey)  # type: ignore[arg-type,return-value]


def test_real_agent_lists_keys_and_certificates_like_ssh_add(key_file, user_ca, tmp_path):
    path, public = key_file
    user_ca.sign(path.with_name(path.name + ".pub"), ["tunnel"], "+1d")
    second = tmp_path / "second"
    second_public = keygen(second, "work key")
    with running_agent() as agent:
        agent.add(path)
        agent.add(second)
        identities = list_identities(agent.socket)
        listed = subprocess.run([require_binary("ssh-add", "openssh-client"), "-l"],
                                env={"SSH_AUTH_SOCK": agent.socket}, capture_output=True,
                                text=True, timeout=30, check=True).stdout
        assert [i.key_fingerprint for i in identities] == [  # ssh-add -l: the key's
            line.split()[1] for line in listed.splitlines()]
        certs = [i for i in identities if i.certificate is not None]
        assert len(certs) == 1 and certs[0].key_public_line == public
        assert certs[0].certificate.principals == ("tunnel",)
        with pytest.raises(UsageError) as several:
            pick(identities, None)
        assert several.value.exit_code == 2
        assert "2 keys" in several.value.message and "work key" in several.value.message
        assert fingerprint(public) in several.value.message
        assert "--key-fingerprint" in (several.value.hint or "")
        chosen = pick(identities, fingerprint(second_public))
        assert chosen.public_line == second_public and chosen.comment == "work key"
        with pytest.raises(UsageError, match="no key with fingerprint"):
            pick(identities, "SHA256:nope")
        agent.delete_all()
        with pytest.raises(AgentUnavailable, match="no keys"):
            pick(list_identities(agent.socket), None)
    with pytest.raises(AgentUnavailable, match="cannot be reached"):
        list_identities(agent.socket)
