"""Certificates, security-key (sk-) public keys and the ssh-agent key fields of the
config, read by core alone and checked against OpenSSH's own ssh-keygen."""

from __future__ import annotations

import base64
import os
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.binaries import require_binary
from tests.fixtures.ssh_agent import keygen
from tunnel_tui.core import config
from tunnel_tui.core.certificates import (
    CertificateState,
    check_user_certificate_for,
    parse_certificate,
)
from tunnel_tui.core.config import Config
from tunnel_tui.core.errors import KeyImportError
from tunnel_tui.core.keys import fingerprint, parse_public_line, public_key_only
from tunnel_tui.core.model import Key, KeySource, KeyType


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def sk_ed25519_line(comment: str = "yubikey") -> str:
    """An sk-ssh-ed25519 public key as ssh-keygen -t ed25519-sk writes it (made by
    hand: no token here). Only its public half ever reaches us."""
    blob = (_string(b"sk-ssh-ed25519@openssh.com") + _string(os.urandom(32))
            + _string(b"ssh:"))
    return f"sk-ssh-ed25519@openssh.com {base64.b64encode(blob).decode()} {comment}"


def ssh_keygen_fingerprint(line: str, tmp_path: Path) -> str:
    path = tmp_path / "key.pub"
    path.write_text(line + "\n")
    out = subprocess.run([require_binary("ssh-keygen", "openssh-client"), "-lf", str(path)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return out.split()[1]


def test_sk_key_line_is_parsed_with_ssh_keygens_fingerprint(tmp_path):
    line = sk_ed25519_line()
    key_type, _ = parse_public_line(line)
    assert key_type is KeyType.SK_ED25519
    assert public_key_only(line) == " ".join(line.split()[:2])
    assert fingerprint(line) == ssh_keygen_fingerprint(line, tmp_path)


def test_sk_key_round_trips_through_the_config(tmp_path):
    line = public_key_only(sk_ed25519_line())
    key = Key(id="k-1", name="yubikey", type=KeyType.SK_ED25519, public_key=line,
              fingerprint=fingerprint(line), created=datetime(2026, 1, 1, tzinfo=UTC),
              source=KeySource.SSH_AGENT)
    data = config.dumps(Config(keys={"k-1": key}))
    assert b'source = "ssh-agent"' in data
    assert config.parse(data, tmp_path / "c.toml").keys["k-1"] == key


def test_a_config_from_before_still_loads_as_keyring_keys(tmp_path):
    old = (b'schema = 1\n[connections]\n[keys.k-1]\nname = "a"\ntype = "ed25519"\n'
           b'public_key = "ssh-ed25519 AAAA"\nfingerprint = "SHA256:x"\n'
           b'created = 2026-01-01T00:00:00Z\ncomment = ""\n')
    key = config.parse(old, tmp_path / "c.toml").keys["k-1"]
    assert key.source is KeySource.KEYRING and key.certificate == "" and not key.in_agent
    assert b"source" not in config.dumps(Config(keys={"k-1": key}))  # unchanged on save


@pytest.fixture
def ca_and_key(tmp_path):
    ca = tmp_path / "ca"
    keygen(ca, "ca")
    user = tmp_path / "id_ed25519"
    public = keygen(user, "me")
    return ca, user, public


def sign(ca: Path, user: Path, principals: str, validity: str, *extra: str) -> str:
    subprocess.run([require_binary("ssh-keygen", "openssh-client"), "-q", "-s", str(ca),
                    "-I", "alice@corp", "-n", principals, "-V", validity, *extra,
                    str(user) + ".pub"], check=True, capture_output=True, timeout=30)
    return Path(str(user) + "-cert.pub").read_text()


def test_certificate_principals_validity_and_key(ca_and_key):
    ca, user, public = ca_and_key
    cert = parse_certificate(sign(ca, user, "deploy,dba", "20300101:20300102"))
    assert cert.is_user and cert.key_id == "alice@corp"
    assert cert.principals == ("deploy", "dba")
    assert cert.valid_after is not None and cert.valid_after.year == 2030  # local midnight
    assert cert.valid_before is not None and cert.valid_before > cert.valid_after
    assert cert.public_key == public and cert.key_fingerprint == fingerprint(public)
    assert cert.state() is CertificateState.NOT_YET_VALID
    assert "deploy, dba" in cert.summary()
    check_user_certificate_for(cert, public)


def test_certificate_states_around_now(ca_and_key):
    ca, user, _ = ca_and_key
    now = datetime.now(UTC)
    assert parse_certificate(sign(ca, user, "u", "-1h:+2d")).state() is CertificateState.VALID
    soon = parse_certificate(sign(ca, user, "u", "-1h:+2h"))
    assert soon.state() is CertificateState.EXPIRING and "expires in" in soon.summary()
    assert soon.state(now + timedelta(hours=3)) is CertificateState.EXPIRED
    old = parse_certificate(sign(ca, user, "u", "20200101:20200102"))
    assert old.state() is CertificateState.EXPIRED and "EXPIRED" in old.summary()
    forever = parse_certificate(sign(ca, user, "u", "always:forever"))
    assert forever.valid_before is None and forever.state() is CertificateState.VALID


def test_wrong_certificates_are_refused_with_the_reason(ca_and_key, tmp_path):
    ca, user, public = ca_and_key
    other_public = keygen(tmp_path / "other", "x")
    cert = parse_certificate(sign(ca, user, "u", "+1d"))
    with pytest.raises(KeyImportError, match="another key"):
        check_user_certificate_for(cert, other_public)
    host = parse_certificate(sign(ca, user, "h.example", "+1d", "-h"))
    with pytest.raises(KeyImportError, match="host certificate"):
        check_user_certificate_for(host, public)
    with pytest.raises(KeyImportError, match="not an OpenSSH certificate"):
        parse_certificate(public)
    with pytest.raises(KeyImportError, match="truncated"):
        parse_certificate(cert.line.split()[0] + " " + cert.line.split()[1][:100])
