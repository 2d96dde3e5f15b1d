"""Splitting what people paste into a Host field."""

from __future__ import annotations

from tunnel_tui.core.model import DbKind
from tunnel_tui.core.pasted_address import read_pasted


def test_database_urls_give_kind_port_user_database_and_options() -> None:
    pasted = read_pasted("postgresql://reader@10.0.12.34:5433/analytics?sslmode=require")
    assert pasted is not None
    assert (pasted.kind, pasted.host, pasted.port, pasted.user, pasted.database) == (
        DbKind.POSTGRESQL, "10.0.12.34", 5433, "reader", "analytics")
    assert pasted.options == (("sslmode", "require"),) and not pasted.had_password
    maria = read_pasted("mariadb://app@db-billing/billing")
    assert maria is not None and maria.kind is DbKind.MYSQL and maria.port is None


def test_a_password_in_the_url_is_dropped_and_reported() -> None:
    pasted = read_pasted("mysql://app:s3cret@db:3306/x?password=also")
    assert pasted is not None and pasted.had_password
    assert "s3cret" not in repr(pasted) and "also" not in repr(pasted)


def test_ssh_and_other_schemes_are_named() -> None:
    ssh = read_pasted("ssh://tunnel@bastion.example.com:2222")
    assert ssh is not None and ssh.is_ssh and ssh.kind is None
    assert (ssh.host, ssh.port, ssh.user) == ("bastion.example.com", 2222, "tunnel")
    web = read_pasted("https://console.example.com/db")
    assert web is not None and web.scheme == "https" and web.kind is None


def test_host_port_and_user_at_host() -> None:
    assert read_pasted("db.internal:5432") == read_pasted(" db.internal:5432 ")
    hp = read_pasted("db.internal:5432")
    assert hp is not None and (hp.host, hp.port, hp.user) == ("db.internal", 5432, "")
    uh = read_pasted("tunnel@bastion:22")
    assert uh is not None and (uh.host, uh.port, uh.user) == ("bastion", 22, "tunnel")
    v6 = read_pasted("[2001:db8::5]:5432")
    assert v6 is not None and (v6.host, v6.port) == ("2001:db8::5", 5432)


def test_plain_hosts_are_left_alone() -> None:
    for text in ("db.internal", "10.0.0.5", "2001:db8::5", ""):
        assert read_pasted(text) is None
