"""`export` / `import` (issue 17) as a team uses them: real subprocesses, a real Secret
Service. The file carries no secret; import is all or nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.canary import assert_no_hits, make_canaries, scan_text
from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.paths import config_path

CANARY = "pw-canary-7a1c93e0"
Run = Callable[..., subprocess.CompletedProcess[str]]


def runner(env: dict[str, str]) -> Run:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tunnel_tui", *args],
            input=stdin, capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip

    return run


@pytest.fixture
def homes(secret_service: Any) -> tuple[Run, Run, Path]:
    """(run in the exporter's home, run in a fresh importer's home, that fresh home)."""
    env = dict(secret_service.env, TUNNEL_TUI_HOME=os.environ["TUNNEL_TUI_HOME"])
    fresh = Path(tempfile.mkdtemp(prefix="h2-", dir=Path(os.environ["TUNNEL_TUI_HOME"]).parent))
    return runner(env), runner(dict(env, TUNNEL_TUI_HOME=str(fresh))), fresh


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def setup_team(run: Run) -> None:
    ok(run("add", "prod", "--db", "postgresql://app@10.0.0.5:5432/appdb?sslmode=require",
           "--ssh", "ssh://tunnel@bastion.example.com", "--generate-key", "--local-port", "54001",
           "--db-password-stdin", stdin=CANARY + "\n"))
    ok(run("add", "stage", "--db", "mysql://shop@10.0.0.6:3306/shop",
           "--ssh", "ssh://tunnel@bastion.example.com:2222", "--jump", "ssh://me@jump.example.com",
           "--use-key", "prod"))
    ok(run("add", "ch", "--db", "clickhouse://default@10.0.0.7/logs?secure=true",
           "--ssh", "ssh://t@other.example.com", "--generate-key", "--local-port", "54003"))


def without_keys(listing: str) -> list[dict[str, Any]]:
    items = json.loads(listing)
    for item in items:
        key = item.pop("key")
        item["key_name"] = key["name"]
    return items


def test_round_trip_into_a_fresh_home_keeps_everything_but_the_keys(homes: Any) -> None:
    run, run_fresh, _ = homes
    setup_team(run)
    exported = ok(run("export"))
    pem = Catalog().private_key(Catalog().key("prod").id).reveal()
    canaries = make_canaries(passwords=[("db password", CANARY)], private_pems=[("key", pem)])
    assert_no_hits(scan_text("export", exported, canaries))
    assert "PRIVATE" not in exported and "password" not in exported.lower()
    assert exported.count("[[connection]]") == 3 and "version = 1" in exported

    out = Path(os.environ["TUNNEL_TUI_HOME"]).parent / "team.toml"
    ok(run("export", "--output", str(out)))
    assert out.read_text() == exported
    result = ok(run_fresh("import", str(out)))
    assert result.splitlines()[0] == "imported 3 connection(s): ch, prod, stage"
    # One new key per distinct key name: prod and stage still share theirs.
    assert "new key 'prod' for prod, stage" in result and "new key 'ch' for ch" in result

    before = without_keys(ok(run("list", "--json")))
    after = without_keys(ok(run_fresh("list", "--json")))
    assert after == before
    old, new = json.loads(ok(run("show", "prod", "--json"))), json.loads(
        ok(run_fresh("show", "prod", "--json")))
    assert old["key"]["fingerprint"] != new["key"]["fingerprint"]  # a key of their own
    shared = json.loads(ok(run_fresh("show", "stage", "--json")))["key"]
    assert shared["id"] == new["key"]["id"]

    # Exporting a subset names only those; an unknown name is bad input.
    assert ok(run("export", "ch")).count("[[connection]]") == 1
    assert run("export", "nope").returncode == 2


def test_use_key_maps_every_connection_to_one_stored_key(homes: Any) -> None:
    run, run_fresh, _ = homes
    setup_team(run)
    exported = ok(run("export"))
    ok(run_fresh("key", "generate", "team"))
    result = json.loads(ok(run_fresh("import", "-", "--use-key", "team", "--json",
                                     stdin=exported)))
    assert result["new_keys"] == {}
    assert {item["key"]["name"] for item in result["added"]} == {"team"}
    unknown = run_fresh("import", "-", "--use-key", "nokey", stdin=exported)
    assert unknown.returncode == 2


def test_clashes_and_malformed_files_write_nothing(homes: Any) -> None:
    run, run_fresh, fresh = homes
    setup_team(run)
    exported = ok(run("export", "prod", "stage"))

    # A name clash is refused, naming both; nothing is written.
    ok(run_fresh("add", "stage", "--db", "postgresql://x@h/db", "--ssh", "ssh://u@b",
                 "--generate-key", "--local-port", "54001"))
    config = (fresh / "config.toml").read_bytes()
    clash = run_fresh("import", "-", stdin=exported)
    assert clash.returncode == 2
    assert "the connection 'stage' in - clashes with the existing connection 'stage'" in (
        clash.stderr)
    assert (fresh / "config.toml").read_bytes() == config

    # A local port clash gets a new port, reported.
    ok(run_fresh("remove", "stage"))
    ok(run_fresh("add", "mine", "--db", "postgresql://x@h/db", "--ssh", "ssh://u@b",
                 "--generate-key", "--local-port", "54001"))
    moved = ok(run_fresh("import", "-", stdin=exported))
    assert "prod: local port 54001 is mine's; prod uses " in moved
    new_port = json.loads(ok(run_fresh("show", "prod", "--json")))["local_port"]
    assert new_port not in (None, 54001)

    # Malformed: the line is named, exit 2, nothing written.
    config = (fresh / "config.toml").read_bytes()
    bad = exported.replace("prod", "prod2").replace("stage", "stage2").replace(
        "ssh://tunnel@bastion.example.com:2222", "ftp://nope")
    broken = run_fresh("import", "-", stdin=bad)
    assert broken.returncode == 2
    line = next(i + 1 for i, text in enumerate(bad.splitlines()) if "ftp://nope" in text)
    assert broken.stderr.startswith(f"error: -, line {line} (connection 'stage2'): `ssh`: ")
    assert (fresh / "config.toml").read_bytes() == config
    not_toml = run_fresh("import", "-", stdin="version = 1\n[[connection]\n")
    assert not_toml.returncode == 2 and "line 2" in not_toml.stderr
    assert (fresh / "config.toml").read_bytes() == config
    assert config_path().exists()
