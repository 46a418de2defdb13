"""``perfstack render``: write every file a stack puts into its containers to a folder.

Secrets are written as placeholders of the right form (never real values), so the files
can be reviewed, committed to a PR comment, and checked by the real tools as they are::

    perfstack render --stack prod --out build/prod
    promtool check config build/prod/prometheus/prometheus.yml
    amtool check-config build/prod/alertmanager/alertmanager.yml
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import configs
from .configs import File
from .settings import Settings, from_stack_file

COMPONENTS = ("prometheus", "alertmanager", "grafana", "redis")


def render_stack(root: Path, stack: str) -> tuple[Settings, dict[str, File]]:
    settings = from_stack_file(root, stack)
    files = configs.render(settings, configs.load_content(root), configs.placeholder_secrets(settings))
    return settings, files


def write(files: dict[str, File], out: Path) -> list[Path]:
    """Write ``files`` under ``out``, replacing what an earlier render left there."""
    out.mkdir(parents=True, exist_ok=True)
    for component in COMPONENTS:
        if (out / component).is_dir():
            shutil.rmtree(out / component)
    written = []
    for key, f in sorted(files.items()):
        path = out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content)
        path.chmod(0o600 if f.secret else 0o644)
        written.append(path)
    manifest = ["# file -> path in its container (secret: uploaded as a Pulumi secret, mode 0600)"]
    manifest += [
        f"{key} -> {f.component}:{f.container_path}{'  (secret, placeholder here)' if f.secret else ''}"
        for key, f in sorted(files.items())
    ]
    (out / "MANIFEST").write_text("\n".join(manifest) + "\n")
    return written
