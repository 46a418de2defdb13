"""Files perfstack generates and commits (rule files, dashboard JSON, the JMeter plan).

Every generator computes ``expected`` (path -> the text it should have); this module compares
it with the working tree and refreshes it, so ``build`` and ``check`` behave the same for all::

    problems = stale(root, expected, folder=root / "alerts" / "generated", pattern="*.yml")
    changed = write(expected, folder=root / "alerts" / "generated", pattern="*.yml")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def stale(
    root: Path,
    expected: Mapping[Path, str],
    folder: Path | None = None,
    pattern: str = "*",
    orphan: str = "has no source",
) -> list[str]:
    """One line per file that differs from ``expected``, or that sits in ``folder`` (matching
    ``pattern``) without being expected."""
    problems = [
        f"{p.relative_to(root)} is {'out of date' if p.is_file() else 'missing'}"
        for p, text in expected.items()
        if not p.is_file() or p.read_text() != text
    ]
    if folder is not None:
        problems += [f"{p.relative_to(root)} {orphan}" for p in sorted(folder.glob(pattern)) if p not in expected]
    return problems


def write(expected: Mapping[Path, str], folder: Path | None = None, pattern: str = "*") -> list[Path]:
    """Bring the files up to date (removing unexpected ones in ``folder``); the files changed."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for p in folder.glob(pattern):
            if p not in expected:
                p.unlink()
    changed = []
    for p, text in expected.items():
        if not p.is_file() or p.read_text() != text:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            changed.append(p)
    return changed
