"""Finding 10 (issue 14): the vault's scrypt parameters have a ceiling.

A tampered header (log2 N = 22, r = 32) made unlock allocate 16 GiB (128 * r * N)
before it could fail. Now parameters needing more than 1 GiB are refused with a
clear message, at once, without the allocation.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys

from tunnel_tui.core import paths, vault
from tunnel_tui.core.secret import Secret

PASS = Secret("correct horse")

# Runs in a child whose address space is capped at 1.5 GiB: an attempt to allocate
# what the header asks for ends in MemoryError (or a crash) instead of the clear
# refusal. (ru_maxrss cannot tell: Linux carries it over fork and exec from the parent.)
UNLOCK = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
from tunnel_tui.core import paths, vault
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.secret import Secret
start = time.monotonic()
try:
    vault.Vault.open(paths.vault_path(), Secret("correct horse"))
    outcome = "opened"
except TunnelTuiError as exc:
    outcome = exc.message
except MemoryError:
    outcome = "MemoryError"
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - start}))
"""


def _tamper(log2_n: int, r: int) -> bytes:
    path = paths.vault_path()
    blob = bytearray(path.read_bytes())
    blob[9] = log2_n  # header: magic (8), version (1), log2 N (1), r (4), p (4), ...
    blob[10:14] = struct.pack(">I", r)
    path.write_bytes(bytes(blob))
    return bytes(blob)


def test_tampered_scrypt_parameters_are_refused_quickly(isolated_env):
    v = vault.create(None, PASS, params=vault.ScryptParams(10, 8, 1))
    v.set("db-password:prod", Secret("s3cret"))
    tampered = _tamper(22, 32)  # 128 * 32 * 2^22 = 16 GiB

    child = subprocess.run([sys.executable, "-c", UNLOCK], capture_output=True, text=True,
                           timeout=60)
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert "16 GiB" in result["outcome"] and "at most 1 GiB" in result["outcome"], result
    assert result["seconds"] < 2.0, result
    assert paths.vault_path().read_bytes() == tampered  # left untouched


def test_the_ceiling_is_about_1_gib():
    assert vault.ScryptParams(16, 8, 1).memory == 64 << 20  # the default
    assert vault.ScryptParams(20, 8, 1).memory <= vault.MAX_SCRYPT_MEMORY
    assert vault.ScryptParams(21, 8, 1).memory > vault.MAX_SCRYPT_MEMORY
