"""Finding 1 (issue 14): X.509 host certificates must not bypass our known_hosts.

asyncssh loads ~/.ssh/ca-bundle.crt and ~/.ssh/crt/ by default. With pyOpenSSL a
server presenting an X.509 host certificate from such a CA was accepted without our
host-key check; without pyOpenSSL the bundle made `validate` die with a NameError.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from tests.reliability.security_helpers import HostileSsh, public_line, run_cli
from tunnel_tui.core.known_hosts import KnownHosts

HIDE_PYOPENSSL = "import sys\nsys.modules['OpenSSL'] = None"


def _require_pyopenssl() -> None:
    try:
        import OpenSSL  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyOpenSSL is missing: pip install pyopenssl (a dev dependency)")
        pytest.skip("needs pyOpenSSL: pip install pyopenssl")


def _ca_bundle(user_home: Path) -> asyncssh.SSHKey:
    """A CA in ~/.ssh/ca-bundle.crt (and ~/.ssh/crt/): what asyncssh trusts by default."""
    ca = asyncssh.generate_private_key("ssh-rsa")
    ca_cert = ca.generate_x509_ca_certificate(ca, "O=Hostile CA")
    ssh_dir = user_home / ".ssh"
    (ssh_dir / "crt").mkdir(parents=True, exist_ok=True)
    ca_cert.write_certificate(str(ssh_dir / "ca-bundle.crt"), "pem")
    ca_cert.write_certificate(str(ssh_dir / "crt" / "ca.pem"), "pem")
    return ca


def test_x509_host_certificate_from_a_trusted_ca_is_refused(secret_service, isolated_env):
    _require_pyopenssl()
    ca = _ca_bundle(isolated_env.user_home)
    host_key = asyncssh.generate_private_key("ssh-rsa")
    cert = ca.generate_x509_host_certificate(
        host_key, "CN=127.0.0.1", issuer="O=Hostile CA", principals=["127.0.0.1"])
    with HostileSsh(host_keys=[(host_key, cert)]) as server:
        name = server.add_connection()
        pinned = asyncssh.generate_private_key("ssh-ed25519")
        KnownHosts().add(server.host, server.port, public_line(pinned))

        out = run_cli("validate", name)

    assert out.returncode == 1, out.stdout + out.stderr
    assert "HOST KEY CHANGED" in out.stdout, out.stdout
    assert "✕ host-key" in out.stdout and "· ssh-auth" in out.stdout
    assert "Traceback" not in out.stderr
    assert KnownHosts().trusted_keys(server.host, server.port) == [public_line(pinned)]


def test_ca_bundle_without_pyopenssl_is_a_normal_host_key_check(secret_service, isolated_env):
    _require_pyopenssl()  # only to write the bundle; the CLI below runs without it
    _ca_bundle(isolated_env.user_home)
    with HostileSsh() as server:
        name = server.add_connection()

        out = run_cli("validate", name, pre=HIDE_PYOPENSSL)

    assert "NameError" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 1, out.stdout + out.stderr
    assert "✕ host-key" in out.stdout and server.fingerprint in out.stdout, out.stdout
