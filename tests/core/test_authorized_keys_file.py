"""authorized_keys editing: other lines stay byte-identical, keys are found by blob."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from tunnel_tui.core.authorized_keys_file import (
    add_key,
    add_key_like,
    contains_key,
    find_keys,
    invalid_lines,
    parse_line,
    remove_key,
    split_lines,
)


def _key(seed: int, key_type: str = "ssh-ed25519") -> str:
    blob = key_type.encode() + seed.to_bytes(4, "big") + bytes(32)
    return f"{key_type} {base64.b64encode(blob).decode()}"


OURS = _key(1)
OLD = _key(2)
OTHER = _key(3, "ssh-rsa")

SAMPLE = (
    "# managed by hand\r\n"
    f'restrict,port-forwarding,permitopen="127.0.0.1:5432",command="a, b \\"c\\"" {OLD} '
    "tunnel-tui:prod\n"
    "\n"
    f"  {OTHER}   alice@laptop  # trailing words\n"
    f'from="10.0.0.0/8,192.168.1.1" {_key(4)} bob\n'
    f"{OLD.replace('ssh-ed25519', 'ssh-ed25519', 1)}"
)


def test_parse_options_with_quoted_commas_and_spaces() -> None:
    line = f'permitopen="h:1",command="echo a, b \\"x y\\"",no-pty {OLD} c d'
    parsed = parse_line(line)
    assert parsed is not None
    assert parsed.options == 'permitopen="h:1",command="echo a, b \\"x y\\"",no-pty'
    assert parsed.public_line == OLD
    assert parsed.comment == "c d"


def test_parse_rejects_comments_blank_and_garbage() -> None:
    for line in ("", "   ", "# ssh-ed25519 AAAA", "ssh-ed25519 !!!", 'restrict,command="x ' + OLD):
        assert parse_line(line) is None


def test_remove_keeps_every_other_line_byte_identical() -> None:
    result = remove_key(SAMPLE, OLD)
    lines = split_lines(SAMPLE)
    assert result == "".join(lines[i] for i in (0, 2, 3, 4))
    assert not contains_key(result, OLD)
    assert contains_key(result, OTHER)


def test_remove_matches_blob_not_comment_or_options() -> None:
    assert len(find_keys(SAMPLE, OLD + " some other comment")) == 2
    assert remove_key(SAMPLE, OURS) == SAMPLE


def test_add_appends_once_and_fixes_missing_newline() -> None:
    text = "# hello\n" + OTHER  # no final newline
    added = add_key(text, OURS + " tunnel-tui:new")
    assert added == f"# hello\n{OTHER}\n{OURS} tunnel-tui:new\n"
    assert add_key(added, OURS + " another comment") == added
    assert add_key("", OURS) == OURS + "\n"


def test_add_like_copies_the_old_lines_options() -> None:
    added = add_key_like(SAMPLE, OURS + " tunnel-tui:new", OLD)
    assert added.endswith(
        f'restrict,port-forwarding,permitopen="127.0.0.1:5432",command="a, b \\"c\\"" {OURS}'
        " tunnel-tui:new\n"
    )
    assert add_key_like("", OURS, OLD) == OURS + "\n"
    assert add_key_like(added, OURS, OLD) == added


def test_add_keeps_crlf_files_crlf() -> None:
    assert add_key(f"{OTHER}\r\n", OURS) == f"{OTHER}\r\n{OURS}\r\n"


def test_invalid_lines_reports_garbage_only() -> None:
    assert invalid_lines(SAMPLE) == []
    assert invalid_lines(SAMPLE + "\nnot a key\n") == [7]


_option_value = st.text(
    alphabet=st.characters(blacklist_characters='"\\\n\r', blacklist_categories=("Cs",)),
    max_size=12,
)
_options = st.lists(
    st.one_of(
        st.sampled_from(["restrict", "port-forwarding", "no-pty", "cert-authority"]),
        _option_value.map(lambda v: f'command="{v}"'),
        _option_value.map(lambda v: f'permitopen="{v}"'),
    ),
    max_size=4,
).map(",".join)
_comment = st.text(
    alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)),
    max_size=20,
)
_junk = st.sampled_from(["", "# comment", "   ", "#", "garbage here"])


@st.composite
def _files(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A file as lines plus the public key of each line ("" for non-key lines)."""
    count = draw(st.integers(0, 8))
    lines, keys = [], []
    for i in range(count):
        if draw(st.booleans()):
            lines.append(draw(_junk))
            keys.append("")
        else:
            key = _key(draw(st.integers(0, 5)), draw(st.sampled_from(["ssh-ed25519", "ssh-rsa"])))
            opts = draw(_options)
            comment = draw(_comment).strip()
            lines.append(" ".join(p for p in (opts, key, comment) if p))
            keys.append(key)
        del i
    return lines, keys


@settings(max_examples=150, deadline=None)
@given(_files(), st.sampled_from(["\n", "\r\n"]), st.booleans(), st.integers(0, 5))
def test_remove_only_touches_matching_lines(
    file: tuple[list[str], list[str]], ending: str, final_newline: bool, seed: int
) -> None:
    lines, keys = file
    pieces = [line + ending for line in lines]
    if pieces and lines[-1] and not final_newline:
        pieces[-1] = lines[-1]
    text = "".join(pieces)
    target = _key(seed)
    result = remove_key(text, target)
    expected = "".join(p for p, key in zip(pieces, keys, strict=True) if key != target)
    assert result == expected
    assert not contains_key(result, target)


@settings(max_examples=150, deadline=None)
@given(_files(), st.integers(0, 5))
def test_add_then_remove_restores_other_lines(file: tuple[list[str], list[str]], seed: int) -> None:
    lines, _ = file
    text = "\n".join(lines) + ("\n" if lines else "")
    new = _key(seed, "ssh-ed25519") + " tunnel-tui:new"
    added = add_key(text, new)
    assert len(find_keys(added, new)) >= 1
    assert added.startswith(text)
    assert invalid_lines(added) == invalid_lines(text)
    if not contains_key(text, new):
        assert remove_key(added, new) == text
