"""Validation hints, worded for the app: a hint that tells a CLI user to fix "the URL"
or run `tunnel-tui edit … --db-password-stdin` names the form's field instead."""

from __future__ import annotations

import re
from dataclasses import replace

from tunnel_tui.core.steps import StepResult

_EDIT = "(e on the list opens the form)"
_FOR_THE_APP: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"set one with tunnel-tui edit \S+ --db-password-stdin"),
     f"type it in the form's Password field {_EDIT}"),
    (re.compile(r"re-enter it with tunnel-tui edit \S+ --db-password-stdin"),
     f"re-enter it in the form's Password field {_EDIT}"),
    (re.compile(r"fix the user in the URL"), f"fix the form's User field {_EDIT}"),
    (re.compile(r"fix the database name in the URL"), f"fix the form's DB name field {_EDIT}"),
    (re.compile(r"lower (?:sslmode|ssl-mode|the TLS option) in the URL"),
     f"choose a lower TLS in the form {_EDIT}"),
    (re.compile(r"add (?:ssl=true|secure=true) to the URL"),
     f"choose TLS ssl=true in the form {_EDIT}"),
    # The app asks for the vault's passphrase itself (its unlock dialog).
    (re.compile(r"(?:unlock|create) (?:the encrypted vault|it): tunnel-tui vault unlock"
                r"(?: \([^)]*\))?"), "unlock the vault: the app asks for its passphrase"),
    (re.compile(r"tunnel-tui vault unlock(?: \([^)]*\))?"),
     "unlock the vault (the app asks for its passphrase)"),
]


def app_hint(hint: str) -> str:
    """A hint worded for the app (see the module's docstring)."""
    for pattern, words in _FOR_THE_APP:
        hint = pattern.sub(words, hint)
    return hint


def for_the_app(result: StepResult) -> StepResult:
    if not result.hint:
        return result
    hint = app_hint(result.hint)
    return result if hint == result.hint else replace(result, hint=hint)
