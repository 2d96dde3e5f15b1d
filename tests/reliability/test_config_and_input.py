"""Config files and bad input end to end (issue 10 items 15, 16, 19): permissions under
two umasks, 1,000 SIGKILLs during writes, a symlinked config, the key import matrix
through the CLI, and hypothesis fuzzing of the URL and config parsers."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.helpers import REPO
from tunnel_tui.core import config, urls
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.paths import config_path

DB = "postgresql://app@db.internal:5432/appdb"
SSH = "ssh://tunnel@bastion.example.com:22"


def _tt(env: dict[str, str], *args: str, stdin: str = "", umask: int | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunnel_tui", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60, cwd=REPO,
                          umask=-1 if umask is None else umask)


@pytest.fixture
def cli_env(secret_service, isolated_env) -> dict[str, str]:
    env = dict(secret_service.env)
    env["TUNNEL_TUI_HOME"] = str(isolated_env.home)
    return env


# -- 15. permissions, crash safety, symlinks ------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_config_is_0600_in_a_0700_home_created_under_any_umask(cli_env, isolated_env, umask):
    home = isolated_env.root / f"fresh-{umask:o}" / "tunnel-tui"
    env = dict(cli_env, TUNNEL_TUI_HOME=str(home))
    out = _tt(env, "add", "prod", "--db", DB, "--ssh", SSH, umask=umask)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(config_path(home).stat().st_mode) == 0o600
    for path in home.rglob("*"):  # lock files, logs, known_hosts: nothing group/other
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:o}"


KILL_LOOP = """
import os, random, signal, sys, time
from pathlib import Path
from tunnel_tui.core import config

home, rounds = Path(sys.argv[1]), int(sys.argv[2])
rng = random.Random(1234)
changed = mid_write = 0
previous = config.load(home).settings.get("n")
for round_ in range(rounds):
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: rewrite the file as fast as it can until killed
        try:
            os.close(ready_r)
            os.write(ready_w, b"1")  # running: the random delay below is time spent writing
            for i in range(1_000_000):
                with config.update(home, lock_timeout=5) as cfg:
                    cfg.settings["n"] = round_ * 1_000_000 + i
                    cfg.settings["pad"] = "x" * rng.randrange(1, 20_000)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)  # a loaded machine may not run the child for a while after fork
    os.close(ready_r)
    time.sleep(rng.random() * 0.01)  # the fault: SIGKILL at a random moment
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    mid_write += bool(list(home.glob(".config.toml.*.tmp")))
    n = config.load(home).settings["n"]  # must always parse (ConfigError would exit 1)
    assert isinstance(n, int), n
    changed += n != previous
    previous = n
print(changed, mid_write)
"""


@pytest.mark.slow
def test_a_thousand_sigkills_during_writes_always_leave_a_parsable_config(isolated_env):
    home = isolated_env.home
    with config.update(home) as cfg:
        cfg.settings["n"] = -1
    # A small process forks the writers: forking pytest itself is several times slower.
    out = subprocess.run([sys.executable, "-c", KILL_LOOP, str(home), "1000"],
                         capture_output=True, text=True, timeout=170, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    changed, mid_write = map(int, out.stdout.split())
    # Not vacuous: many writes completed, and many kills landed in the middle of one.
    assert changed > 100 and mid_write > 20, (changed, mid_write)
    # No stale lock or temp file blocks the next normal writer.
    with config.update(home, lock_timeout=2) as cfg:
        cfg.settings["n"] = "done"
    assert config.load(home).settings["n"] == "done"
    assert stat.S_IMODE(config_path(home).stat().st_mode) == 0o600
    assert not list(home.glob(".config.toml.*.tmp"))


def test_a_symlinked_config_is_refused_and_its_target_untouched(cli_env, isolated_env):
    target = isolated_env.root / "elsewhere.toml"
    target.write_text("schema = 1\n")
    before = target.read_bytes()
    config_path(isolated_env.home).symlink_to(target)
    for args in (("list",), ("add", "x", "--db", DB, "--ssh", SSH)):
        out = _tt(cli_env, *args)
        assert out.returncode != 0
        assert "symbolic link" in out.stderr.lower() or "symlink" in out.stderr.lower(), (
            out.stderr)
        assert "Traceback" not in out.stderr
    assert target.read_bytes() == before
    assert config_path(isolated_env.home).is_symlink()


# -- 16. key import matrix through the CLI ------------------------------------------------


def _keyring_items(env: dict[str, str]) -> str:
    out = subprocess.run(["secret-tool", "search", "--all", "--unlock", "service", "tunnel-tui"],
                         capture_output=True, text=True, env=env, timeout=30)
    return "".join(line for line in (out.stdout + out.stderr).splitlines(True)
                   if not line.startswith(("created", "modified")))


def _keygen(path: Path, *extra: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-C", "", "-f", str(path), *extra],
                   check=True, capture_output=True, timeout=30)
    return path


PPK = """PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: ed25519-key-20240101
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIDn8ZDWuH4hpfQjZxLQeT0/kxX6LfW4yUrE0aC5Dt4bN
Private-Lines: 1
AAAAIFzT8vBOJZrVmIGzXKFzrqvf8hkdTmDjb7ThN1sFTw3k
Private-MAC: 5a1b0f8b1f3b6a3d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d
"""


def _cases(tmp: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (file, stdin, a word the one error line must contain)."""
    enc = _keygen(tmp / "enc", "-N", "right-passphrase")
    plain = _keygen(tmp / "plain", "-N", "")
    text = plain.read_text()
    (tmp / "truncated").write_text(text[: len(text) // 2])
    (tmp / "garbage").write_bytes(os.urandom(700))
    (tmp / "notakey").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n"
                                 "-----END OPENSSH PRIVATE KEY-----\n")
    (tmp / "key.ppk").write_text(PPK)
    (tmp / "empty").write_text("")
    for path in tmp.iterdir():
        path.chmod(0o600)  # only the world-readable case may warn about permissions
    return {
        "wrong passphrase": (enc, "wrong-passphrase\n", "passphrase"),
        "missing passphrase": (enc, "", "passphrase"),
        "ppk": (tmp / "key.ppk", "", "puttygen"),
        "truncated": (tmp / "truncated", "", ""),
        "garbage": (tmp / "garbage", "", ""),
        "bad base64 body": (tmp / "notakey", "", ""),
        "empty": (tmp / "empty", "", ""),
        "missing file": (tmp / "nope", "", "nope"),
        "public key instead": (Path(f"{plain}.pub"), "", ""),
    }


@pytest.mark.parametrize("via", ["add --identity", "key import"])
def test_key_import_matrix_one_clear_message_exit_2_nothing_stored(
    cli_env, isolated_env, tmp_path, via
):
    ok = _tt(cli_env, "add", "seed", "--db", DB, "--ssh", SSH)  # a config and keyring to keep
    assert ok.returncode == 0, ok.stderr
    cfg_before = config_path(isolated_env.home).read_bytes()
    ring_before = _keyring_items(cli_env)
    assert "key:" in ring_before  # secret-tool sees the items: the comparison means something
    for case, (path, stdin, word) in _cases(tmp_path).items():
        passphrase = ["--passphrase-stdin"] if stdin else []
        if via == "key import":
            args = ["key", "import", "k2", str(path), *passphrase]
        else:
            args = ["add", "c2", "--db", "postgresql://app@db2:5432/x", "--ssh", SSH,
                    "--identity", str(path), *passphrase]
        out = _tt(cli_env, *args, stdin=stdin)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 2, (case, out.returncode, out.stderr)
        assert "Traceback" not in out.stderr, (case, out.stderr)
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1, (case, out.stderr)
        assert len(lines) <= 2 and all(x.startswith(("error:", "hint:")) for x in lines), (
            case, out.stderr)
        assert word.lower() in out.stderr.lower(), (case, out.stderr)
        assert config_path(isolated_env.home).read_bytes() == cfg_before, case
        assert _keyring_items(cli_env) == ring_before, case


def test_world_readable_key_file_imports_with_a_warning(cli_env, isolated_env, tmp_path):
    key = _keygen(tmp_path / "loose", "-N", "")
    os.chmod(key, 0o644)
    out = _tt(cli_env, "add", "loose", "--db", DB, "--ssh", SSH, "--identity", str(key))
    assert out.returncode == 0, out.stderr
    assert "readable" in out.stderr.lower() and str(key) in out.stderr, out.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o644  # the user's file is not modified


# -- 19. fuzzing: only typed errors -------------------------------------------------------

URLISH = st.one_of(
    st.text(max_size=120),
    st.builds(lambda scheme, rest: f"{scheme}://{rest}",
              st.sampled_from(["postgresql", "postgres", "mysql", "mariadb", "clickhouse",
                               "vertica", "trino", "ssh", "http", ""]),
              st.text(alphabet=st.characters(codec="utf-8"), max_size=80)),
    st.builds(lambda u, h, p, d, q: f"postgresql://{u}@{h}:{p}/{d}?{q}",
              st.text(max_size=12), st.text(max_size=20), st.text(max_size=8),
              st.text(max_size=10), st.text(max_size=20)),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(URLISH, st.deferred(lambda: VALIDISH)))
def test_url_and_name_parsers_raise_only_typed_errors(text):
    for parse in (urls.parse_db_url, urls.parse_ssh_url, urls.validate_name):
        try:
            parse(text)
        except TunnelTuiError as exc:
            assert exc.message and "Traceback" not in exc.message
            assert exc.exit_code == 2


TOML_SCALARS = st.one_of(st.integers(-2**63, 2**63 - 1), st.text(max_size=20), st.booleans(),
                         st.floats(allow_nan=True), st.none())
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
SECTIONS = st.fixed_dictionaries(
    {"schema": st.one_of(st.just(1), TOML_SCALARS)},
    optional={
        "connections": st.dictionaries(st.text(max_size=8), TOML_VALUES, max_size=3),
        "keys": st.dictionaries(st.text(max_size=8), TOML_VALUES, max_size=3),
        "rotations": TOML_VALUES, "settings": TOML_VALUES,
    },
)


def _to_toml(doc: object) -> bytes | None:
    import tomli_w

    def clean(value: object) -> object:
        if value is None:
            return ""
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    try:
        return tomli_w.dumps(clean(doc)).encode()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), SECTIONS.map(_to_toml)))
def test_config_parser_raises_only_config_errors(data):
    if data is None:
        return
    try:
        config.parse(data, Path("/fuzz/config.toml"))
    except TunnelTuiError as exc:
        assert type(exc).__name__ == "ConfigError", type(exc)
        assert "/fuzz/config.toml" in exc.message


def test_structured_config_fuzz_with_real_connection_shapes():
    """Mutations of a valid document (types swapped, fields dropped) only give
    ConfigError: the hand-written shapes hypothesis would rarely produce."""
    import tomllib

    import tomli_w

    valid = config.dumps(_sample_config())
    doc = tomllib.loads(valid.decode())
    rng = random.Random(7)
    replacements: list[object] = [None, 0, -1, 70000, "", "x", [], {}, 1.5, True, "k-none"]
    paths_: list[tuple[str, ...]] = []

    def walk(node: object, prefix: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                paths_.append((*prefix, key))
                walk(value, (*prefix, key))

    walk(doc, ())
    for _ in range(1500):
        mutated = tomllib.loads(valid.decode())
        path = rng.choice(paths_)
        parent = mutated
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.3:
            del parent[path[-1]]
        else:
            value = rng.choice(replacements)
            parent[path[-1]] = "" if value is None else value
        data = tomli_w.dumps(mutated).encode()
        try:
            config.parse(data, Path("/fuzz/config.toml"))
        except TunnelTuiError as exc:
            assert type(exc).__name__ == "ConfigError", (path, type(exc))


def _sample_config() -> config.Config:
    from tunnel_tui.core.model import (
        Connection,
        Database,
        DbKind,
        Keepalive,
        Key,
        KeyType,
        SshEndpoint,
    )

    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDn8ZDWuH4hpfQjZxLQeT0/kxX6LfW4yUrE0aC5Dt4bN"
    key = Key(id="k-1", name="k", type=KeyType.ED25519, public_key=public,
              fingerprint="SHA256:x", created=datetime(2026, 1, 1, tzinfo=UTC), comment="c")
    conn = Connection(
        name="prod",
        database=Database(kind=DbKind.POSTGRESQL, host="db", port=5432, database="app",
                          user="u", options=(("sslmode", "require"),)),
        bastion=SshEndpoint(host="b", user="t", port=22),
        key_id="k-1",
        jumps=(SshEndpoint(host="j", user="t", port=2222, key_id="k-1"),),
        local_port=15432,
        keepalive=Keepalive(5.0, 2),
    )
    return config.Config(connections={"prod": conn}, keys={"k-1": key},
                         rotations={"prod": {"stage": "x"}}, settings={"a": 1})


FIELD = st.one_of(st.text(max_size=30), st.sampled_from(["", " ", "22", "0", "65536", "-1",
                                                         "postgresql", "db.internal", "a b"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=FIELD, kind=FIELD, host=FIELD, port=FIELD, database=FIELD, user=FIELD, tls=FIELD,
       ssh_host=FIELD, ssh_port=FIELD, ssh_user=FIELD, jump=FIELD, local_port=FIELD)
def test_the_form_parser_never_raises_and_reports_fields(**fields):
    jump = fields.pop("jump")
    result = urls.parse_form(**fields, jumps=[jump])
    assert result.ok != bool(result.errors)
    for error in result.errors:
        assert error.field and error.message


NAMEISH = st.text(alphabet="abcxyz019-_.%@:[]", min_size=1, max_size=12)
VALIDISH = st.builds(
    lambda scheme, user, host, port, db, query: (
        f"{scheme}://{user}@{host}{port}{db}{query}"),
    st.sampled_from(["postgresql", "postgres", "mysql", "mariadb", "clickhouse", "vertica",
                     "trino", "ssh"]),
    NAMEISH,
    st.one_of(NAMEISH, st.just("[::1]"), st.just("[fe80::1%eth0]"), st.just("db.internal")),
    st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}")),
    st.one_of(st.just(""), NAMEISH.map(lambda d: f"/{d}")),
    st.one_of(st.just(""), st.builds(lambda k, v: f"?{k}={v}", NAMEISH, NAMEISH),
              st.just("?sslmode=require&sslrootcert=/tmp/ca.pem"), st.just("?secure=true")),
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(URLISH, VALIDISH))
def test_a_parsed_url_round_trips_through_its_formatted_form(text):
    for parse, fmt in ((urls.parse_db_url, urls.format_db_url),
                       (urls.parse_ssh_url, urls.format_ssh_url)):
        try:
            parsed = parse(text)
        except TunnelTuiError:
            continue
        assert parse(fmt(parsed)) == parsed, (text, fmt(parsed))
