"""`up NAME [--json]` without click (tunnel_tui/commands/up_fast.py, via entry.py): the
same output, errors and exit codes as the click command, against a real sshd and
PostgreSQL; and what it imports: with the keys already held by the agent, nothing of
click, Textual, asyncssh, asyncpg, the keyring or cryptography.

No timings here: those go to the benchmark (docs/PERF-WORK.md, "up path")."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from tests.agent.test_agent_tunnels import (
    Setup,
    add_ready_connection,
    pg_query,
)
from tunnel_tui.agent.address import resolve
from tunnel_tui.core import paths
from tunnel_tui.core.catalog import Catalog, ReuseKey

# The fast path itself, proving on the way that click stayed out (99: left to click).
FAST = (
    "import sys\n"
    "from tunnel_tui.commands.up_fast import run\n"
    "code = run(sys.argv[1:])\n"
    "assert 'click' not in sys.modules, 'the fast path imported click'\n"
    "sys.exit(99 if code is None else code)\n"
)
# The click command, as every form but the plain ones reaches it.
CLICK = "import sys\nfrom tunnel_tui.cli import main\nsys.exit(main())\n"
# The console script's entry point, then which heavy packages the process loaded.
HEAVY = ("click", "textual", "asyncssh", "asyncpg", "keyring", "secretstorage", "jeepney",
         "cryptography")  # fmt: skip
ENTRY_IMPORTS = (
    "import json, sys\n"
    "from tunnel_tui.entry import main\n"
    "try:\n"
    "    main()\n"
    "    code = 0\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
    "sys.stderr.write('\\nHEAVY ' + json.dumps(heavy) + '\\n')\n"
    "sys.exit(code)\n"
)


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=90
    )


def fast(*args: str) -> subprocess.CompletedProcess[str]:
    return _python(FAST, *args)


def slow(*args: str) -> subprocess.CompletedProcess[str]:
    return _python(CLICK, *args)


def same(*args: str, click_first: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the form both ways; they must agree on exit code, stdout and stderr."""
    first, second = (slow, fast) if click_first else (fast, slow)
    a, b = first(*args), second(*args)
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args
    return a


def entry_imports(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = _python(ENTRY_IMPORTS, *args)
    stderr, _, marker = result.stderr.rpartition("\nHEAVY ")
    result.stderr = stderr
    return result, set(json.loads(marker))


def test_up_fast_path_answers_like_click(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    setup: Setup = add_ready_connection("pg", "postgresql", postgres, sshd, client_keypair)

    # An unknown name, no agent running: exit 2 both ways, and no agent started.
    unknown = same("up", "nope")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr == "error: no connection named 'nope'\nhint: see tunnel-tui list\n"
    assert not resolve(paths.home_dir()).socket.exists()

    # The fast path starts the agent and brings pg up; click's `up` is then a no-op
    # printing the same line, and the same status object.
    line = same("up", "pg")
    assert line.returncode == 0 and line.stderr == ""
    assert line.stdout.startswith("pg up on 127.0.0.1:")
    port = int(line.stdout.strip().rsplit(":", 1)[1])
    as_json = same("up", "pg", "--json")
    assert json.loads(as_json.stdout)["local_port"] == port
    assert json.loads(as_json.stdout)["state"] == "up"
    assert same("up", "--json", "pg").stdout == as_json.stdout
    assert asyncio.run(pg_query(port, setup.db, "SELECT 1")) == 1

    # Brought up by click this time (the port is pinned now), fast path second.
    assert slow("down", "pg").returncode == 0
    assert same("up", "pg", click_first=True).stdout == line.stdout
    assert asyncio.run(pg_query(port, setup.db, "SELECT 2")) == 2

    # The agent answers for an unknown name now: the same words, exit 2.
    assert same("up", "nope").stderr == unknown.stderr

    # A failure: exit 1, the reason and a hint, the same both ways (the agent holds no
    # key once pg is down, so each run reads the keyring again).
    assert slow("down", "pg").returncode == 0
    sshd.deauthorize(client_keypair.public_line)
    for form in (("up", "pg"), ("up", "pg", "--json")):
        failed = same(*form)
        assert failed.returncode == 1 and failed.stdout == "", failed.stderr
        assert failed.stderr.startswith("error: ") and "\nhint: " in failed.stderr


def test_up_with_held_keys_imports_nothing_heavy(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    """DESIGN.md: `up` asks the agent first whether it holds NAME's secrets, and reads
    the keyring only if not. Held: no keyring, no crypto, no click/Textual/asyncssh."""
    setup = add_ready_connection("pg", "postgresql", postgres, sshd, client_keypair)
    key_id = Catalog().get("pg").key_id
    Catalog().add(
        "pg2",
        f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ReuseKey(key_id),
    )

    # Nothing held yet: this `up` reads the keyring (and may use crypto), nothing else.
    first, loaded = entry_imports("up", "pg")
    assert first.returncode == 0 and first.stdout.startswith("pg up on "), first.stderr
    assert not {"click", "textual", "asyncssh", "asyncpg"} & loaded, loaded
    assert "keyring" in loaded  # the caller's keyring was read: the agent had no key

    # pg's tunnel holds the key pg2 needs: the keyring is not even imported.
    for form in (("up", "pg2"), ("up", "pg2", "--json")):
        result, loaded = entry_imports(*form)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert loaded == set(), loaded
    port = json.loads(result.stdout)["local_port"]
    assert asyncio.run(pg_query(port, setup.db, "SELECT 1")) == 1

    # An unknown name with the agent running: no config, no keyring read to say so.
    result, loaded = entry_imports("up", "nope")
    assert result.returncode == 2 and "no connection named 'nope'" in result.stderr
    assert loaded == set(), loaded


def test_other_up_forms_are_left_to_click(isolated_env: Any) -> None:
    for form in (
        ("up",),
        ("up", "--help"),
        ("up", "a", "b"),
        ("up", "pg", "--timeout", "5"),
        ("up", "pg", "--wait-for-key", "5"),
        ("up", "pg", "--accept-host-key", "SHA256:x"),
        ("up", "--", "pg"),
        ("status", "pg"),
    ):
        assert fast(*form).returncode == 99, form
    entry = "from tunnel_tui.entry import main; main()"
    helped = _python(entry, "up", "--help")
    assert helped.returncode == 0 and "--wait-for-key" in helped.stdout
    missing = _python(entry, "up")
    assert missing.returncode == 2 and missing.stderr.startswith("error: missing argument")
