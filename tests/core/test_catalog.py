"""The catalog against a real Secret Service: secrets in the keyring, references in the
config, and nothing half-written when something fails."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tunnel_tui.core import config
from tunnel_tui.core.catalog import Catalog, GenerateKey, ImportKey, ReuseKey
from tunnel_tui.core.errors import ConfigError, KeyImportError, NotFoundError, UsageError
from tunnel_tui.core.keys import fingerprint, load_private
from tunnel_tui.core.model import KeyType, secret_name_for_db_password, secret_name_for_key
from tunnel_tui.core.paths import config_path
from tunnel_tui.core.secret import Secret

CANARY = "db-pw-canary-7c1e9f"
DB = "postgresql://app@db.internal:5432/appdb?sslmode=require"
SSH = "ssh://tunnel@bastion.example.com:22"


def config_bytes() -> bytes:
    path = config_path()
    return path.read_bytes() if path.exists() else b""


def test_add_generated_key_keeps_secrets_in_the_keyring(catalog: Catalog) -> None:
    result = catalog.add("prod", DB, SSH, db_password=Secret(CANARY))
    assert result.generated and result.new_key
    key = result.key
    assert re.fullmatch(r"k-[0-9a-f]{8}", key.id)
    assert key.name == "prod" and key.type is KeyType.ED25519
    assert key.comment == "tunnel-tui:prod"
    pem = catalog.private_key(key.id)
    assert pem.reveal().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert load_private(pem.reveal().encode()).fingerprint == key.fingerprint
    assert fingerprint(key.public_key) == key.fingerprint
    assert catalog.db_password("prod") == Secret(CANARY)
    raw = config_bytes()
    assert CANARY.encode() not in raw
    assert b"PRIVATE KEY" not in raw
    assert pem.reveal().splitlines()[1].encode() not in raw
    assert catalog.get("prod").database.option("sslmode") == "require"


def test_list_and_show_never_touch_the_keyring(catalog: Catalog, monkeypatch) -> None:
    catalog.add("prod", DB, SSH)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.setenv("TUNNEL_TUI_SECRETS", "keyring")  # would fail if a store were opened
    fresh = Catalog()
    assert [c.name for c in fresh.connections()] == ["prod"]
    assert fresh.get("prod").bastion.user == "tunnel"
    assert [k.name for k in fresh.keys()] == ["prod"]
    assert fresh.users_of(fresh.keys()[0].id) == ["prod"]
    assert fresh._store is None


def test_shared_key_survives_until_its_last_user_is_removed(catalog: Catalog) -> None:
    first = catalog.add("prod", DB, SSH)
    second = catalog.add("prod-ro", DB, SSH, key=ReuseKey("prod"), db_password=Secret("x1"))
    assert second.key == first.key and not second.generated and not second.new_key
    kid = first.key.id
    assert catalog.users_of(kid) == ["prod", "prod-ro"]

    with pytest.raises(UsageError) as info:
        catalog.delete_key(kid)
    assert "prod, prod-ro" in info.value.message

    removed = catalog.remove("prod-ro")
    assert removed.deleted_keys == [] and removed.kept_keys == {kid: ["prod"]}
    assert removed.db_password_deleted
    assert catalog.store.get(secret_name_for_db_password("prod-ro")) is None
    assert catalog.store.get(secret_name_for_key(kid)) is not None

    removed = catalog.remove("prod")
    assert [k.id for k in removed.deleted_keys] == [kid]
    assert catalog.store.get(secret_name_for_key(kid)) is None
    assert catalog.keys() == [] and catalog.connections() == []


def test_bad_input_changes_nothing(catalog: Catalog) -> None:
    catalog.add("prod", DB, SSH, local_port=15432)
    before = config_bytes()
    cases = [
        (lambda: catalog.add("prod", DB, SSH), "name"),
        (lambda: catalog.add("bad name", DB, SSH), "name"),
        (lambda: catalog.add("x", "postgresql://db/x", SSH), "db.user"),
        (lambda: catalog.add("x", DB, "ssh://host"), "ssh.user"),
        (lambda: catalog.add("x", DB, SSH, jumps=["ssh://u@j:0"]), "jump.port"),
        (lambda: catalog.add("x", DB, SSH, key=ReuseKey("nope")), "key"),
        (lambda: catalog.add("x", DB, SSH, local_port=15432), "local_port"),
        (lambda: catalog.add("x", DB, SSH, key=GenerateKey("dsa")), "key_type"),
        (lambda: catalog.edit("nope", db_url=DB), "name"),
    ]
    for action, field in cases:
        with pytest.raises(UsageError) as info:
            action()
        assert info.value.field == field, info.value
    assert config_bytes() == before
    assert catalog.store.get(secret_name_for_db_password("x")) is None


def test_two_connections_may_not_share_a_local_port(catalog: Catalog) -> None:
    catalog.add("staging", DB, SSH, local_port=15432)
    catalog.add("prod", DB, SSH)
    before = config_bytes()
    for action in (
        lambda: catalog.add("other", DB, SSH, local_port=15432),
        lambda: catalog.edit("prod", local_port=15432),
        lambda: catalog.set_local_port("prod", 15432),
    ):
        with pytest.raises(UsageError) as info:
            action()
        assert "'staging'" in info.value.message and "15432" in info.value.message
    assert config_bytes() == before
    assert catalog.set_local_port("prod", 15433).local_port == 15433
    assert catalog.edit("prod", local_port=None).connection.local_port is None


def test_import_encrypted_key_and_reuse_by_fingerprint(catalog: Catalog, keyfiles) -> None:
    kf = keyfiles.good["ed25519-openssh-enc"]
    with pytest.raises(KeyImportError):
        catalog.add("prod", DB, SSH, key=ImportKey(kf.read(), Secret("wrong passphrase")))
    assert catalog.connections() == [] and not config_path().exists()

    result = catalog.add("prod", DB, SSH, key=ImportKey(kf.read(), Secret(kf.passphrase)))
    assert not result.generated and result.new_key
    assert result.key.public_key == kf.public_line
    again = catalog.add("prod-2", DB, SSH, key=ImportKey(kf.read(), Secret(kf.passphrase)))
    assert again.key.id == result.key.id and not again.new_key
    with pytest.raises(UsageError) as info:
        catalog.import_key("dup", kf.read(), Secret(kf.passphrase))
    assert "--use-key prod" in (info.value.hint or "")
    pem = catalog.private_key(result.key.id).reveal()
    assert "ENCRYPTED" not in pem and load_private(pem.encode()).public_line == kf.public_line


def test_secret_is_rolled_back_when_the_config_write_fails(secret_service) -> None:
    """A store that corrupts the config right after storing a secret (as a broken
    concurrent writer would): the commit fails and the keyring is left as before."""
    real = Catalog().store

    class CorruptingStore:
        backend_name = real.backend_name
        get = staticmethod(real.get)
        delete = staticmethod(real.delete)

        @staticmethod
        def set(name: str, value: Secret) -> None:
            real.set(name, value)
            config_path().write_bytes(b"schema = 1\n[[[broken\n")

    catalog = Catalog(secrets=CorruptingStore())
    with pytest.raises(ConfigError):
        catalog.add("prod", DB, SSH, db_password=Secret(CANARY))
    assert real.get(secret_name_for_db_password("prod")) is None
    assert config_path().read_bytes() == b"schema = 1\n[[[broken\n"


def test_edit_generates_a_new_key_and_replace_key_moves_users(catalog: Catalog) -> None:
    a = catalog.add("a", DB, SSH).key
    catalog.add("b", DB, SSH, key=ReuseKey(a.id), db_password=Secret("pw"))
    edited = catalog.edit("b", key=GenerateKey("rsa", name="b-key"), clear_db_password=True)
    assert edited.generated and edited.key.type is KeyType.RSA and edited.key.name == "b-key"
    assert catalog.get("b").key_id == edited.key.id
    assert catalog.db_password("b") is None
    assert catalog.users_of(a.id) == ["a"]

    assert catalog.replace_key(a.id, edited.key.id) == ["a"]
    assert catalog.users_of(edited.key.id) == ["a", "b"]
    assert catalog.users_of(a.id) == []
    deleted = catalog.delete_key(a.name)
    assert deleted.id == a.id
    assert catalog.store.get(secret_name_for_key(a.id)) is None
    with pytest.raises(NotFoundError):
        catalog.key(a.id)


def test_edit_keeps_what_is_not_given(catalog: Catalog) -> None:
    catalog.add("prod", DB, SSH, jumps=["ops@jump1:2222"], local_port=16000)
    catalog.edit("prod", db_url="mysql://root@maria.internal/shop")
    conn = catalog.get("prod")
    assert conn.database.kind.value == "mysql" and conn.database.port == 3306
    assert conn.bastion.host == "bastion.example.com"
    assert [j.display for j in conn.jumps] == ["ops@jump1:2222"]
    assert conn.local_port == 16000


def test_restrict_targets_follow_the_hops(catalog: Catalog) -> None:
    key = catalog.add("prod", DB, SSH, jumps=["ops@jump1:2222"]).key
    catalog.add("mysql", "mysql://u@10.0.0.9:3307/x", SSH, key=ReuseKey(key.id))
    assert catalog.restrict_targets(key.id) == [
        ("10.0.0.9", 3307),
        ("bastion.example.com", 22),
        ("db.internal", 5432),
    ]


def test_standalone_keys(catalog: Catalog) -> None:
    key = catalog.generate_key("team")
    assert catalog.key("team") == key and catalog.users_of(key.id) == []
    with pytest.raises(UsageError):
        catalog.generate_key("team")
    conn = catalog.add("prod", DB, SSH, key=ReuseKey("team")).connection
    assert conn.key_id == key.id
    assert catalog.delete_key(catalog.generate_key("spare").id).name == "spare"


def test_key_name_defaults_to_connection_and_stays_unique(catalog: Catalog) -> None:
    catalog.generate_key("prod")
    result = catalog.add("prod", DB, SSH)
    assert result.key.name == "prod-2" and result.key.comment == "tunnel-tui:prod-2"


def test_config_after_catalog_work_round_trips(catalog: Catalog) -> None:
    catalog.add("prod", DB, SSH, jumps=["ssh://ops@[::1]:2200"], local_port=15000)
    cfg = config.load()
    assert config.parse(config.dumps(cfg), Path("x")) == cfg


def test_rename_moves_the_password_and_keeps_the_key(catalog: Catalog) -> None:
    key = catalog.add("old", DB, SSH, db_password=Secret(CANARY)).key
    catalog.add("taken", DB, SSH, key=ReuseKey(key.id))
    with pytest.raises(UsageError) as info:
        catalog.edit("old", rename="taken")
    assert info.value.field == "name"
    result = catalog.edit("old", rename="new", ssh_url="ssh://ops@b2:2222")
    assert result.connection.name == "new" and result.key == key
    assert [c.name for c in catalog.connections()] == ["new", "taken"]
    assert catalog.db_password("new") == Secret(CANARY)
    assert catalog.store.get(secret_name_for_db_password("old")) is None
    assert catalog.users_of(key.id) == ["new", "taken"]


def test_generated_key_logs_in_to_real_openssh(add_tunnel_connection, sshd, isolated_env) -> None:
    """The key the catalog stored is accepted by a real sshd once authorized."""
    setup = add_tunnel_connection("app", bastion=sshd)
    identity = isolated_env.root / "id_from_keyring"
    identity.write_text(setup.private_pem.reveal())
    identity.chmod(0o600)
    out = subprocess.run(
        ["ssh", *sshd.ssh_args(identity, None), "echo", "ok"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert setup.connection.bastion.display == f"{sshd.user}@127.0.0.1:{sshd.port}"
