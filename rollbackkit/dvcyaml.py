"""Declare bundles in ``dvc.yaml``'s ``artifacts:`` section (round-trip, comments kept).

DVC's model registry (``dvc artifacts get``, DVC Studio) and GTO read this section; the
artifact's ``path`` is the bundle's model file, and ``meta`` points at the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollbackkit.bundle import MANIFEST_FILE, Manifest, atomic_write
from rollbackkit.errors import InvalidInput


def declare_artifact(dvc_yaml: Path, name: str, model_path: str, manifest: Manifest) -> None:
    """Add or update ``artifacts.NAME`` in ``dvc.yaml``, keeping everything else as it is."""
    from io import StringIO

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML()
    yaml.preserve_quotes = True
    data: Any = {}
    if dvc_yaml.exists():
        try:
            data = yaml.load(dvc_yaml.read_text()) or {}
        except YAMLError as exc:
            raise InvalidInput(
                f"{dvc_yaml} is not valid YAML: {str(exc).splitlines()[0]}.", "Fix dvc.yaml, then register again."
            ) from exc
    artifacts = data.setdefault("artifacts", {})
    bundle_dir = model_path.rsplit("/", 1)[0]
    artifacts[name] = {
        "path": model_path,
        "type": "model",
        "desc": f"rollbackkit bundle {name} (manifest: {bundle_dir}/{MANIFEST_FILE})",
        "labels": ["rollbackkit"],
        "meta": {"bundle_dir": bundle_dir, "model_format": manifest.components["model"].format},
    }
    out = StringIO()
    yaml.dump(data, out)
    atomic_write(dvc_yaml, out.getvalue())
