"""The config file: round trip, permissions, atomicity, locking, corrupt and symlinked files."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import stat
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunnel_tui.core import config
from tunnel_tui.core.atomic import write_private_file
from tunnel_tui.core.errors import ConfigError
from tunnel_tui.core.model import (
    Connection,
    Database,
    DbKind,
    Keepalive,
    Key,
    KeyType,
    SshEndpoint,
)
from tunnel_tui.core.paths import config_path


def make_key(kid: str = "k-0000abcd", name: str = "prod") -> Key:
    return Key(
        id=kid,
        name=name,
        type=KeyType.ED25519,
        public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
        fingerprint="SHA256:abc",
        created=datetime(2026, 11, 23, 17, 0, tzinfo=UTC),
        comment="tunnel-tui:prod",
    )


def make_conn(
    name: str = "prod", key_id: str = "k-0000abcd", local_port: int | None = None
) -> Connection:
    return Connection(
        name=name,
        database=Database(
            DbKind.POSTGRESQL, "db.internal", 5432, "app", "app", (("sslmode", "require"),)
        ),
        bastion=SshEndpoint("bastion.example.com", "tunnel", 22),
        key_id=key_id,
        local_port=local_port,
    )


def sample() -> config.Config:
    return config.Config(
        connections={"prod": make_conn()},
        keys={"k-0000abcd": make_key()},
        rotations={"prod": {"step": "verified", "old_key": "k-0000abcd"}},
        settings={"theme": "dark"},
    )


def test_missing_file_is_an_empty_config(isolated_env) -> None:
    assert config.load() == config.Config()
    assert not config_path().exists()


def test_round_trip_and_layout(isolated_env) -> None:
    with config.update() as cfg:
        cfg.connections.update(sample().connections)
        cfg.keys.update(sample().keys)
        cfg.rotations.update(sample().rotations)
        cfg.settings.update(sample().settings)
    assert config.load() == sample()
    doc = tomllib.loads(config_path().read_text())
    assert doc["schema"] == 1
    assert doc["connections"]["prod"]["database"]["options"] == {"sslmode": "require"}
    assert doc["connections"]["prod"]["key"] == "k-0000abcd"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_permissions_whatever_the_umask(isolated_env, umask: int) -> None:
    home = isolated_env.root / f"fresh-{umask:o}"
    old = os.umask(umask)
    try:
        with config.update(home) as cfg:
            cfg.keys["k-0000abcd"] = make_key()
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(config_path(home).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / config.LOCK_NAME).stat().st_mode) == 0o600


def test_loose_home_dir_is_tightened(isolated_env) -> None:
    os.chmod(isolated_env.home, 0o755)
    with config.update():
        pass
    assert stat.S_IMODE(isolated_env.home.stat().st_mode) == 0o700


def test_nothing_written_when_the_block_raises(isolated_env) -> None:
    with config.update() as cfg:
        cfg.keys["k-0000abcd"] = make_key()
    before = config_path().read_bytes()
    with pytest.raises(RuntimeError), config.update() as cfg:
        cfg.keys.clear()
        raise RuntimeError("boom")
    assert config_path().read_bytes() == before


def test_corrupt_file_names_path_and_line_and_is_never_overwritten(isolated_env) -> None:
    path = config_path()
    corrupt = b"schema = 1\n[connections.prod]\nkey = \n"
    path.write_bytes(corrupt)
    with pytest.raises(ConfigError) as info:
        config.load()
    assert str(path) in info.value.message
    assert "line 3" in info.value.message
    with pytest.raises(ConfigError), config.update() as cfg:
        cfg.settings["x"] = 1
    assert path.read_bytes() == corrupt


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            'schema = 1\n[connections.p]\nkey = "k"\n[connections.p.database]\nkind = "oracle"\n',
            "connections.p.database.kind",
        ),
        (
            'schema = 1\n[keys.k]\nname = "n"\ntype = "ed25519"\npublic_key = "x"\n'
            'fingerprint = "f"\ncreated = "yesterday"\n',
            "keys.k.created",
        ),
        ("schema = 2\n", "newer tunnel-tui"),
        ("[settings]\n", "schema"),
    ],
)
def test_wrong_values_are_named(isolated_env, text: str, where: str) -> None:
    config_path().write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load()
    assert where in info.value.message


def test_dangling_key_reference_is_reported(isolated_env) -> None:
    config.save(config.Config(connections={"prod": make_conn()}))
    with pytest.raises(ConfigError) as info:
        config.load()
    assert "k-0000abcd" in info.value.message


def test_symlinked_config_is_refused(isolated_env) -> None:
    target = isolated_env.root / "elsewhere.toml"
    target.write_bytes(b"schema = 1\n")
    config_path().symlink_to(target)
    with pytest.raises(ConfigError) as info:
        config.load()
    assert "symbolic link" in info.value.message
    with pytest.raises(ConfigError), config.update() as cfg:
        cfg.settings["x"] = 1
    assert target.read_bytes() == b"schema = 1\n"
    assert config_path().is_symlink()


def test_atomic_write_refuses_symlink_and_leaves_no_temp(isolated_env) -> None:
    d = isolated_env.root
    victim = d / "victim"
    victim.write_bytes(b"keep")
    (d / "link").symlink_to(victim)
    with pytest.raises(ConfigError):
        write_private_file(d / "link", b"new")
    assert victim.read_bytes() == b"keep"
    write_private_file(d / "plain", b"one")
    write_private_file(d / "plain", b"two")
    assert (d / "plain").read_bytes() == b"two"
    assert sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp")) == []


def test_concurrent_updates_lose_nothing(isolated_env) -> None:
    """Forked writers increment a counter under the lock: no update is lost."""
    with config.update() as cfg:
        cfg.settings["counter"] = 0
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                for _ in range(25):
                    with config.update() as cfg:
                        cfg.settings["counter"] += 1
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert config.load().settings["counter"] == 100


def test_writer_killed_at_random_moments_never_leaves_a_torn_file(isolated_env) -> None:
    """SIGKILL a writer 200 times mid-loop: the config always parses, and stale temp
    files are swept by the next writer."""
    rng = random.Random(4)
    with config.update() as cfg:
        cfg.keys["k-0000abcd"] = make_key()
        cfg.connections["prod"] = make_conn()
    for round_ in range(200):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(read_fd)
            try:
                for i in range(10_000):
                    with config.update() as cfg:
                        cfg.settings["filler"] = "x" * (i % 4000)
                        cfg.settings["i"] = i
                    if i == 0:
                        os.write(write_fd, b"1")
            finally:
                os._exit(0)
        os.close(write_fd)
        assert os.read(read_fd, 1) == b"1"  # the child has written once
        os.close(read_fd)
        # A random kill moment (not synchronisation): somewhere inside the write loop.
        deadline = rng.random() * 0.004
        if deadline:
            time.sleep(deadline)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        loaded = config.load()  # must parse every time
        assert loaded.connections["prod"] == make_conn()
        assert isinstance(loaded.settings["i"], int), round_
    with config.update():
        pass
    assert list(isolated_env.home.glob(".config.toml.*.tmp")) == []


# --- property: any valid Config round-trips ---------------------------------------

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
hosts = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["::1", "10.0.12.34", "fe80::1"]),
)
ports = st.integers(1, 65535)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
endpoints = st.builds(SshEndpoint, host=hosts, user=names, port=ports)
databases = st.builds(
    Database,
    kind=st.sampled_from(list(DbKind)),
    host=hosts,
    port=ports,
    database=texts,
    user=texts,
    options=st.dictionaries(names, texts, max_size=3).map(lambda d: tuple(sorted(d.items()))),
)
keys_st = st.builds(
    Key,
    id=st.from_regex(r"k-[0-9a-f]{8}", fullmatch=True),
    name=names,
    type=st.sampled_from(list(KeyType)),
    public_key=texts,
    fingerprint=texts,
    created=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    comment=texts,
)


@st.composite
def configs(draw: st.DrawFn) -> config.Config:
    key_list = draw(st.lists(keys_st, min_size=1, max_size=3, unique_by=lambda k: k.id))
    keys = {k.id: k for k in key_list}
    key_ids = st.sampled_from(sorted(keys))
    conns = {}
    for name in draw(st.lists(names, max_size=3, unique=True)):
        conns[name] = Connection(
            name=name,
            database=draw(databases),
            bastion=draw(endpoints),
            key_id=draw(key_ids),
            jumps=tuple(
                SshEndpoint(e.host, e.user, e.port, draw(st.none() | key_ids))
                for e in draw(st.lists(endpoints, max_size=2))
            ),
            local_port=draw(st.none() | ports),
            keepalive=Keepalive(
                interval=draw(st.floats(0, 600, allow_nan=False)),
                count_max=draw(st.integers(0, 10)),
            ),
        )
    rotations = draw(
        st.dictionaries(
            names, st.dictionaries(names, texts | st.integers(0, 10**6), max_size=3), max_size=2
        )
    )
    settings_ = draw(st.dictionaries(names, texts | st.booleans(), max_size=3))
    return config.Config(conns, keys, rotations, settings_)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_any_valid_config_round_trips(cfg: config.Config) -> None:
    assert config.parse(config.dumps(cfg), Path("config.toml")) == cfg


def test_nested_update_is_refused_at_once(isolated_env) -> None:
    with config.update(), pytest.raises(RuntimeError, match="nested"), config.update():
        pass


def test_lock_held_elsewhere_times_out_with_a_clear_error(isolated_env) -> None:
    with config.update() as cfg:
        cfg.settings["seed"] = 1  # an unchanged config is not written at all
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child holds the lock until killed
        try:  # never return into pytest from the forked child
            fd = os.open(isolated_env.home / config.LOCK_NAME, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(w, b"1")
            signal.pause()
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"
        before = config_path().read_bytes()
        with pytest.raises(ConfigError, match="another tunnel-tui process"):
            with config.update(lock_timeout=0.2) as cfg:
                cfg.settings["x"] = 1
        assert config_path().read_bytes() == before
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
