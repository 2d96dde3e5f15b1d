"""The rotated key's name: readable, never the name of a key that exists already."""

from __future__ import annotations

from datetime import UTC, datetime

from tunnel_tui.rotation.keygen import new_key_name

NOW = datetime(2026, 12, 4, 22, 41, 8, tzinfo=UTC)


def test_a_rotated_name_replaces_its_suffix() -> None:
    assert new_key_name("prod", NOW) == "prod-r20261204224108"
    assert new_key_name("prod-r20250101000000", NOW) == "prod-r20261204224108"
    assert new_key_name("prod-r20250101000000-2", NOW) == "prod-r20261204224108"


def test_two_rotations_in_one_second_get_two_names() -> None:
    # The second rotation's old key is the first one's new key, named in the same second:
    # reusing that name made `store` take the key in use for the new one.
    first = new_key_name("prod", NOW)
    second = new_key_name(first, NOW, {first})
    assert second == "prod-r20261204224108-2"
    assert new_key_name(second, NOW, {first, second}) == "prod-r20261204224108-3"


def test_a_long_name_stays_within_63_characters() -> None:
    first = new_key_name("x" * 80, NOW)
    name = new_key_name(first, NOW, {first})
    assert len(first) == len(name) == 63 and name.endswith("-r20261204224108-2")
