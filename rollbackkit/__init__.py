"""rollbackkit: version model bundles on git + DVC and roll them back in seconds, audited.

The public API is importable from here; heavy modules load on first use, so
``import rollbackkit`` stays fast and side-effect free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollbackkit.errors import RollbackkitError

__version__ = "0.1.0"

_LAZY = {
    "Registry": "rollbackkit.registry.store",
    "VersionInfo": "rollbackkit.registry.store",
    "VerifyReport": "rollbackkit.registry.store",
    "LoadedBundle": "rollbackkit.bundle.model",
    "Manifest": "rollbackkit.bundle.manifest",
    "Schema": "rollbackkit.bundle.schema",
    "Reference": "rollbackkit.refs",
    "Version": "rollbackkit.refs",
}

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Manifest
    from rollbackkit.bundle.model import LoadedBundle
    from rollbackkit.bundle.schema import Schema
    from rollbackkit.refs import Reference, Version
    from rollbackkit.registry.store import Registry, VerifyReport, VersionInfo


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rollbackkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "LoadedBundle",
    "Manifest",
    "Reference",
    "Registry",
    "RollbackkitError",
    "Schema",
    "VerifyReport",
    "Version",
    "VersionInfo",
    "__version__",
]
