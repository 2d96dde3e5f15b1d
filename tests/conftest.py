"""Test harness: real servers (OpenSSH sshd, PostgreSQL, MariaDB, Secret Service)
on free loopback ports, each in its own temp dir, stopped by PID at teardown.

The fixtures live in tests/fixtures/; this file wires them in and isolates every
test from the developer's own HOME, XDG dirs, D-Bus session and keyring.
"""

from pathlib import Path

import pytest

# Fixture modules import each other (e.g. sshd uses ports); register them for assertion
# rewriting up front so the import order does not matter (and no "already imported" warning).
pytest.register_assert_rewrite("tests.fixtures")

# Every module in tests/fixtures/ is a pytest plugin; each area of the code owns its own.
pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
