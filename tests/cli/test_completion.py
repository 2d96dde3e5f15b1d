"""Shell completion (issue 17) through click's own protocol: the shell sets
`_TUNNEL_TUI_COMPLETE` and COMP_WORDS/COMP_CWORD, the program prints candidates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from tunnel_tui.cli import cli
from tunnel_tui.core.catalog import Catalog, GenerateKey


@pytest.fixture
def configured(secret_service: Any) -> None:
    catalog = Catalog()
    catalog.add("prod", "postgresql://app@10.0.0.5/appdb", "ssh://t@bastion.example.com",
                key=GenerateKey(name="teamkey"))
    catalog.add("prod-replica", "postgresql://app@10.0.0.6/appdb", "ssh://t@bastion.example.com",
                key=GenerateKey(name="replica"), jumps=["ssh://me@jump.example.com:2222"])
    catalog.add("stage", "mysql://shop@10.0.0.7/shop", "ssh://t@stage.example.com",
                key=GenerateKey(name="stagekey"))


def complete(line: str) -> list[str]:
    """What bash would offer for the last word of LINE (an empty last word: after a space)."""
    words = line.split(" ")
    result = CliRunner().invoke(
        cli, prog_name="tunnel-tui",
        env={"_TUNNEL_TUI_COMPLETE": "bash_complete", "COMP_WORDS": line,
             "COMP_CWORD": str(len(words) - 1)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return [item.split(",", 1)[1] for item in result.output.splitlines() if item]


def test_connection_names_for_every_command_taking_name(configured: None) -> None:
    for command in ("up", "down", "status", "show", "edit", "remove", "validate", "forward",
                    "rotate-key", "exec", "export", "key show", "bastion-setup"):
        assert complete(f"tunnel-tui {command} pro") == ["prod", "prod-replica"], command
    assert complete("tunnel-tui exec ") == ["prod", "prod-replica", "stage"]
    assert complete("tunnel-tui export prod s") == ["stage"]  # several names


def test_key_names_and_hosts(configured: None) -> None:
    assert complete("tunnel-tui add x --use-key ") == ["replica", "stagekey", "teamkey"]
    assert complete("tunnel-tui edit prod --use-key st") == ["stagekey"]
    assert complete("tunnel-tui import f.toml --use-key t") == ["teamkey"]
    assert complete("tunnel-tui key show --key r") == ["replica"]
    assert complete("tunnel-tui key delete s") == ["stagekey"]
    assert complete("tunnel-tui hosts forget ") == [
        "bastion.example.com", "jump.example.com:2222", "stage.example.com"]


def test_no_config_completes_nothing_and_commands_still_complete() -> None:
    assert complete("tunnel-tui up ") == []
    assert "exec" in complete("tunnel-tui ex") and "export" in complete("tunnel-tui ex")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_the_shell_parses(shell: str) -> None:
    result = subprocess.run([sys.executable, "-m", "tunnel_tui", "completion", shell],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "_TUNNEL_TUI_COMPLETE" in result.stdout
    binary = shutil.which(shell)
    if binary is None:
        assert shell != "bash"  # bash is always there; zsh and fish maybe not
        return
    check = subprocess.run([binary, "-n"], input=result.stdout, capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stderr


def test_a_real_completion_request_from_bash(configured: None) -> None:
    env = dict(os.environ, _TUNNEL_TUI_COMPLETE="bash_complete",
               COMP_WORDS="tunnel-tui down st", COMP_CWORD="2")
    result = subprocess.run([sys.executable, "-m", "tunnel_tui"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["plain,stage"]
    assert complete("tunnel-tui completion ") == ["bash", "zsh", "fish"]
