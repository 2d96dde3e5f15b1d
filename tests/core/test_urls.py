"""Parsing what people type: one clear UsageError per mistake, with the field it concerns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.model import Database, DbKind, SshEndpoint
from tunnel_tui.core.urls import (
    format_db_url,
    format_ssh_url,
    parse_db_url,
    parse_form,
    parse_ssh_url,
    validate_name,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://app@db.internal:5432/appdb?sslmode=require",
            Database(
                DbKind.POSTGRESQL, "db.internal", 5432, "appdb", "app", (("sslmode", "require"),)
            ),
        ),
        (
            "postgres://app@10.0.12.34/x",
            Database(DbKind.POSTGRESQL, "10.0.12.34", 5432, "x", "app"),
        ),
        ("mysql://root@db:3307", Database(DbKind.MYSQL, "db", 3307, "", "root")),
        ("mariadb://u@db/shop", Database(DbKind.MYSQL, "db", 3306, "shop", "u")),
        ("clickhouse://default@ch/", Database(DbKind.CLICKHOUSE, "ch", 8123, "", "default")),
        (
            "clickhouse://default@ch?secure=true",
            Database(DbKind.CLICKHOUSE, "ch", 8443, "", "default", (("secure", "true"),)),
        ),
        ("vertica://dbadmin@v/vdb", Database(DbKind.VERTICA, "v", 5433, "vdb", "dbadmin")),
        ("trino://me@t", Database(DbKind.TRINO, "t", 8080, "", "me")),
        ("postgresql://u@[::1]:6543/d", Database(DbKind.POSTGRESQL, "::1", 6543, "d", "u")),
        (
            "POSTGRESQL://u%40corp@h/d?b=2&a=1",
            Database(DbKind.POSTGRESQL, "h", 5432, "d", "u@corp", (("a", "1"), ("b", "2"))),
        ),
    ],
)
def test_parse_db_url(url: str, expected: Database) -> None:
    assert parse_db_url(url) == expected


@pytest.mark.parametrize(
    ("url", "field", "words"),
    [
        ("postgresql://db:5432/x", "db.user", "user is missing"),
        ("postgresql://@db/x", "db.user", "user is missing"),
        ("postgresql://u@db:0/x", "db.port", "the database port 0 is out of range"),
        ("postgresql://u@db:65536/x", "db.port", "database port 65536 is out of range"),
        ("postgresql://u@db:54x/x", "db.port", "must be a number"),
        ("postgresql://u@db:/x", "db.port", "must be a number"),
        ("oracle://u@db/x", "db.kind", "unknown database scheme"),
        ("db.internal:5432", "db.url", "not a database URL"),
        ("postgresql://u@/x", "db.host", "host is empty"),
        ("postgresql://u@::1/x", "db.host", "needs brackets"),
        ("postgresql://u@[zz]/x", "db.host", "not an IPv6"),
        ("postgresql://u@bad_host!/x", "db.host", "invalid host"),
        ("postgresql://u@h/a/b", "db.database", "one path segment"),
        ("postgresql://u@h/x?sslmode=a&sslmode=b", "db.options", "given twice"),
    ],
)
def test_db_url_mistakes(url: str, field: str, words: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_db_url(url)
    assert info.value.field == field
    assert words in info.value.message
    assert info.value.exit_code == 2


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        parse_db_url("mongodb://u@h/x")
    assert info.value.hint is not None
    for scheme in ("postgresql://", "mysql://", "mariadb://", "clickhouse://", "vertica://"):
        assert scheme in info.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:S3cr3t-canary@db/x",
        "mysql://app:S3cr3t-canary@db:3306",
        "postgresql://app@db/x?password=S3cr3t-canary",
    ],
)
def test_password_in_url_is_refused_and_never_echoed(url: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_db_url(url)
    err = info.value
    assert err.field == "db.password"
    assert "--db-password-stdin" in (err.hint or "")
    assert "S3cr3t-canary" not in err.render() + str(err) + repr(err)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "ssh://tunnel@bastion.example.com:2222",
            SshEndpoint("bastion.example.com", "tunnel", 2222),
        ),
        ("ssh://tunnel@bastion", SshEndpoint("bastion", "tunnel", 22)),
        ("ssh://t@[::1]:22/", SshEndpoint("::1", "t", 22)),
        ("ops@jump.example.com", SshEndpoint("jump.example.com", "ops", 22)),
    ],
)
def test_parse_ssh_url(url: str, expected: SshEndpoint) -> None:
    assert parse_ssh_url(url) == expected


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("ssh://bastion:22", "ssh.user"),
        ("ssh://u@bastion:99999", "ssh.port"),
        ("ssh://u@:22", "ssh.host"),
        ("http://u@bastion", "ssh.url"),
        ("ssh://u:pw@bastion", "ssh.password"),
        ("ssh://u@bastion/path", "ssh.url"),
    ],
)
def test_ssh_url_mistakes(url: str, field: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_ssh_url(url)
    assert info.value.field == field


def test_jump_fields_are_prefixed() -> None:
    with pytest.raises(UsageError) as info:
        parse_ssh_url("ssh://jump", field="jump")
    assert info.value.field == "jump.user"


def test_port_errors_name_which_port() -> None:
    """A CLI error has no input field next to it: the message says which port."""
    with pytest.raises(UsageError, match="the SSH port 99999 is out of range"):
        parse_ssh_url("ssh://u@bastion:99999")
    with pytest.raises(UsageError, match="the jump host port 0 is out of range"):
        parse_ssh_url("ssh://u@jump:0", field="jump")


@pytest.mark.parametrize("name", ["prod-db", "a", "staging_2.eu", "X" * 63])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "has space", "a/b", "x" * 64, "ünï", "a:b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(UsageError) as info:
        validate_name(name)
    assert info.value.field == "name"


def test_format_round_trips() -> None:
    for url in (
        "postgresql://app@db.internal/appdb?sslmode=require",
        "clickhouse://default@ch?secure=true",
        "mysql://u%40x@[::1]:3307/shop",
    ):
        db = parse_db_url(url)
        assert parse_db_url(format_db_url(db)) == db
    ep = SshEndpoint("::1", "t", 2200)
    assert parse_ssh_url(format_ssh_url(ep)) == ep


def test_form_reports_every_error_at_once() -> None:
    result = parse_form(
        name="prod db",
        kind="oracle",
        host="",
        port="70000",
        user="",
        ssh_host="bastion",
        ssh_port="x",
        ssh_user="",
    )
    assert not result.ok
    fields = {e.field for e in result.errors}
    assert fields == {"name", "db.kind", "db.host", "db.port", "db.user", "ssh.port", "ssh.user"}


def test_form_name_taken_and_valid_spec() -> None:
    taken = parse_form(
        name="prod",
        kind="postgresql",
        host="db",
        user="u",
        ssh_host="b",
        ssh_user="t",
        taken_names=["prod"],
    )
    assert [e.field for e in taken.errors] == ["name"]
    assert "already exists" in taken.errors[0].message
    ok = parse_form(
        name="prod",
        kind="ClickHouse",
        host="ch",
        user="default",
        tls="true",
        ssh_host="bastion",
        ssh_user="tunnel",
        ssh_port="2222",
        local_port="15432",
    )
    assert ok.spec is not None
    assert ok.spec.database == Database(
        DbKind.CLICKHOUSE, "ch", 8443, "", "default", (("secure", "true"),)
    )
    assert ok.spec.bastion == SshEndpoint("bastion", "tunnel", 2222)
    assert ok.spec.local_port == 15432


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_only_usage_errors(text: str) -> None:
    for parser in (parse_db_url, parse_ssh_url, validate_name):
        try:
            parser(text)
        except UsageError as exc:
            assert exc.field


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["postgresql", "mysql", "clickhouse", "ssh", "trino", ""]),
    st.text(alphabet="ab:@[]/?=&%1.:-_ \t", max_size=30),
)
def test_fuzz_url_shaped_text(scheme: str, rest: str) -> None:
    for parser in (parse_db_url, parse_ssh_url):
        try:
            parser(f"{scheme}://{rest}")
        except UsageError as exc:
            assert exc.field
