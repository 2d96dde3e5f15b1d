"""Test harness: real servers (OpenSSH sshd, PostgreSQL, MariaDB, Secret Service)
on free loopback ports, each in its own temp dir, stopped by PID at teardown.

The fixtures live in tests/fixtures/; this file wires them in and isolates every
test from the developer's own HOME, XDG dirs, D-Bus session and keyring.
"""
