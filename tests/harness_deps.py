"""Are the Python dependencies of pyproject.toml (runtime + given extras) installed here?

`make test` runs this with the venv's Python after the stamp check, so a dependency
someone added to pyproject.toml (or a venv changed by hand) gets installed even when
the stamp looks newer. Exit 0: all satisfied; exit 1: lists what is missing.
Usage: python tests/harness_deps.py [extra ...]
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # a bare venv still has pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement


def unmet(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project.get("dependencies", []))
    for extra in extras:
        wanted += project.get("optional-dependencies", {}).get(extra, [])
    problems = []
    for line in wanted:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{line} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            problems.append(f"{line} (have {version})")
    return problems


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    problems = unmet(root / "pyproject.toml", sys.argv[1:])
    for problem in problems:
        print(f"python dependency not satisfied: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)
