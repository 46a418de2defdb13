"""Asset manifests, and which URLs a deploy must purge when it replaces one manifest by another.

A manifest is a JSON file that the front-end build writes next to the files it produced::

    {
      "assets": {
        "/index.html": "sha256:9f2c...",
        "/static/app.js": "sha256:4be1...",
        "/static/app.css": "sha256:0d77..."
      },
      "entrypoints": {
        "/": ["/static/app.js", "/static/app.css"],
        "/index.html": ["/static/app.js", "/static/app.css"]
      }
    }

* ``assets`` (required) maps each path, as served under ``--base-url``, to a hash of its content.
  Any string works as the hash; only equality is compared.
* ``entrypoints`` (optional) maps each HTML path to the asset paths it references. A page that
  references a changed asset must be purged too, or visitors keep getting the cached HTML that
  points at the old asset.

A flat object (``{"/static/app.js": "sha256:...", ...}``) is read as ``assets`` alone, except that
a key named ``entrypoints`` holding an object is still read as the entrypoints map.

:func:`diff` compares the manifest deployed before (``--changed-from``) with the new one
(``--changed-to``). The paths it returns, each with the reason, are:

1. every asset whose hash differs ("changed");
2. every asset of the old manifest missing from the new one ("removed");
3. every entrypoint, in either manifest, that references a changed, removed or added asset, whose
   list of references changed, or that appears in only one of the two manifests ("entrypoint").

An asset that exists only in the new manifest is not purged itself (nothing can be cached under a
URL that did not exist, unless something cached its 404), but the pages that reference it are.
Unchanged assets are never purged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote


class ManifestError(ValueError):
    """A manifest file that cannot be read, or is not of the documented form."""


@dataclass(frozen=True)
class Manifest:
    """Asset path -> content hash, and HTML path -> the asset paths it references."""

    assets: Mapping[str, str]
    entrypoints: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Change:
    """One path to purge and why: ``changed``, ``removed`` or ``entrypoint``."""

    path: str
    reason: str


def _path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: expected a non-empty path string such as /static/app.js, got {value!r}")
    value = value.strip()
    return value if value.startswith("/") else "/" + value


def parse(data: Any, source: str = "manifest") -> Manifest:
    """Check ``data`` (decoded JSON) against the documented form and build a :class:`Manifest`."""
    if not isinstance(data, Mapping):
        raise ManifestError(f"{source}: expected a JSON object with 'assets' (path -> hash) and optional 'entrypoints'")
    if "assets" in data:
        assets_raw = data["assets"]
        unknown = sorted(set(data) - {"assets", "entrypoints", "version"})
        if unknown:
            raise ManifestError(f"{source}: unknown key(s) {', '.join(unknown)}; expected 'assets' and 'entrypoints'")
    else:
        assets_raw = {k: v for k, v in data.items() if not (k == "entrypoints" and isinstance(v, Mapping))}
    if not isinstance(assets_raw, Mapping):
        raise ManifestError(f"{source}: 'assets' must be an object mapping asset path to content hash")

    assets: dict[str, str] = {}
    for key, digest in assets_raw.items():
        path = _path(key, f"{source}: assets")
        if not isinstance(digest, str) or not digest:
            raise ManifestError(f"{source}: assets[{key!r}] must be a non-empty hash string, got {digest!r}")
        assets[path] = digest

    entry_raw = data.get("entrypoints") or {}
    if not isinstance(entry_raw, Mapping):
        raise ManifestError(f"{source}: 'entrypoints' must be an object mapping an HTML path to a list of asset paths")
    entrypoints: dict[str, tuple[str, ...]] = {}
    for key, refs in entry_raw.items():
        page = _path(key, f"{source}: entrypoints")
        if not isinstance(refs, list):
            raise ManifestError(f"{source}: entrypoints[{key!r}] must be a list of asset paths, got {refs!r}")
        entrypoints[page] = tuple(_path(r, f"{source}: entrypoints[{key!r}]") for r in refs)
    return Manifest(assets, entrypoints)


def load(path: str | Path) -> Manifest:
    """Read and check a manifest file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {path} is not valid JSON: {exc}") from None
    return parse(data, str(path))


def diff(old: Manifest, new: Manifest) -> list[Change]:
    """The paths to purge when ``new`` replaces ``old``, in a stable order (see the module docstring)."""
    changes: dict[str, str] = {}
    touched: set[str] = set()
    for path, digest in sorted(old.assets.items()):
        if path not in new.assets:
            changes[path] = "removed"
            touched.add(path)
        elif new.assets[path] != digest:
            changes[path] = "changed"
            touched.add(path)
    touched.update(p for p in new.assets if p not in old.assets)  # added: purge the pages that use them

    for page in sorted(set(old.entrypoints) | set(new.entrypoints)):
        before, after = old.entrypoints.get(page), new.entrypoints.get(page)
        refs = set(before or ()) | set(after or ())
        if after is None or before is None or set(before) != set(after) or refs & touched:
            changes.setdefault(page, "entrypoint")
    return [Change(path, reason) for path, reason in changes.items()]


def url_for(base_url: str, path: str) -> str:
    """``base_url`` joined with a manifest path, percent-encoded as a browser would request it.

    Characters that are already legal in a URL path (including ``%`` escapes) are kept as they are.
    """
    return base_url.rstrip("/") + quote(path, safe="/:@!$&'()*+,;=-._~%")
