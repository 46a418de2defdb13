"""Where the project's content lives (stacks/, alerts/, dashboards/)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The folder holding Pulumi.yaml: $PERFSTACK_ROOT, else the nearest one above ``start``
    (default: the working directory), else the checkout this package was imported from."""
    if os.environ.get("PERFSTACK_ROOT"):
        return Path(os.environ["PERFSTACK_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[1]
