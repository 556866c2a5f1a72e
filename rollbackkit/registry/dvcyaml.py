"""Declare bundles in ``dvc.yaml``'s ``artifacts:`` section (round-trip, comments kept).

DVC's model registry (``dvc artifacts get``, DVC Studio) and GTO read this section; the
artifact's ``path`` is the bundle's model file, and ``meta`` points at the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollbackkit.bundle.manifest import MANIFEST_FILE, Manifest, atomic_write
from rollbackkit.errors import InvalidInput
from rollbackkit.yamlsafe import load_file, load_round_trip, read_text

HINT = "Fix dvc.yaml (DVC reads it at every 'dvc add'), commit it, then register again."


def check_dvc_yaml(dvc_yaml: Path) -> None:
    """Refuse a ``dvc.yaml`` that DVC could not read, before ``register`` changes anything.

    Read within :mod:`rollbackkit.yamlsafe`'s bounds, then validated by DVC's own schema
    for project files (DVC would otherwise fail in the middle of ``dvc add``).
    """
    if not dvc_yaml.exists():
        return
    data = load_file(dvc_yaml, dvc_yaml.name, HINT)
    if data is None:
        return
    if not isinstance(data, dict):
        raise InvalidInput(f"{dvc_yaml.name} must hold a YAML mapping (stages, artifacts, ...).", HINT)
    from dvc.dvcfile import ProjectFile
    from dvc.utils.strictyaml import YAMLValidationError

    try:
        ProjectFile.validate(data, fname=dvc_yaml.name)
    except YAMLValidationError as exc:
        detail = str(getattr(exc, "exc", exc)).splitlines()[0]
        raise InvalidInput(f"{dvc_yaml.name} is not a valid DVC project file ({detail}).", HINT) from exc


def declare_artifact(dvc_yaml: Path, name: str, model_path: str, manifest: Manifest) -> None:
    """Add or update ``artifacts.NAME`` in ``dvc.yaml``, keeping everything else as it is."""
    from io import StringIO

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    data: Any = {}
    if dvc_yaml.exists():
        data = load_round_trip(read_text(dvc_yaml, dvc_yaml.name, HINT), dvc_yaml.name, HINT) or {}
    if not isinstance(data, dict) or not isinstance(data.setdefault("artifacts", {}), dict):
        raise InvalidInput(f"{dvc_yaml.name}: 'artifacts' must be a mapping of names.", HINT)
    artifacts = data["artifacts"]
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
