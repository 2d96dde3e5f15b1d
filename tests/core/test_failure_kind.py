"""A failure's kind in a word, from the messages the engine and probes really produce."""

from __future__ import annotations

import pytest

from tunnel_tui.core.failure_kind import failed_word, failure_kind
from tunnel_tui.core.formatting import state_label_width


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("bastion tunnel@b:22: publickey rejected for user tunnel", "auth"),
        ("ssh-auth on tunnel@b:22: the server rejected the key SHA256:abc", "auth"),
        ('password authentication failed for user "reader"', "auth"),
        ("Access denied for user 'app'@'10.0.0.1' (using password: YES)", "auth"),
        ("bastion tunnel@nowhere.invalid:22: cannot connect: name does not resolve "
         "(Name or service not known)", "dns"),
        ("bastion tunnel@b:22: HOST KEY CHANGED (now SHA256:x); someone may be intercepting",
         "host key"),
        ("bastion tunnel@b:22: unknown host key SHA256:x", "host key"),
        ("bastion tunnel@127.0.0.1:9: cannot connect: connection refused", "refused"),
        ("bastion tunnel@10.255.0.1:22: cannot connect: timed out", "timeout"),
        ("keepalive timeout after 15 s", "timeout"),
        ("something nobody expected", None),
        ("", None),
        (None, None),
    ],
)
def test_kind_of_real_messages(message: str | None, kind: str | None) -> None:
    assert failure_kind(message) == kind


def test_the_word_fits_the_state_cell() -> None:
    assert failed_word("connection refused") == "failed: refused"
    assert failed_word("strange") == "failed"
    # The widest label is a state word now (waiting-for-secret, DESIGN.md's states);
    # every failure kind fits within it.
    assert state_label_width() == len("◌ waiting-for-secret")
    assert len("✕ failed: host key") <= state_label_width()
