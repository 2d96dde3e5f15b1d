"""The plain forms the click-free fast paths answer: `COMMAND [NAME] [--json]`.

Anything else (another flag, --help, two names, a typo) returns None and goes through
click, so the fast paths never have to reproduce click's usage errors.
"""

from __future__ import annotations


def plain_form(argv: list[str], command: str) -> tuple[str | None, bool] | None:
    """(NAME or None, --json given) for `command [NAME] [--json]`, else None."""
    if not argv or argv[0] != command:
        return None
    as_json = False
    names: list[str] = []
    for arg in argv[1:]:
        if arg == "--json":
            as_json = True
        elif arg.startswith("-") or names:
            return None
        else:
            names.append(arg)
    return (names[0] if names else None), as_json
