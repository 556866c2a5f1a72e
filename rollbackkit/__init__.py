"""rollbackkit: version model bundles on git + DVC and roll them back in seconds, audited.

The public API is importable from here; heavy modules load on first use, so
``import rollbackkit`` stays fast and side-effect free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollbackkit.errors import RollbackkitError

__version__ = "0.1.0"

_LAZY = {
    "Registry": "rollbackkit.registry",
    "VersionInfo": "rollbackkit.registry",
    "VerifyReport": "rollbackkit.registry",
    "LoadedBundle": "rollbackkit.loaded",
    "Manifest": "rollbackkit.bundle",
    "Schema": "rollbackkit.schema",
    "Reference": "rollbackkit.refs",
    "Version": "rollbackkit.refs",
}

if TYPE_CHECKING:
    from rollbackkit.bundle import Manifest
    from rollbackkit.loaded import LoadedBundle
    from rollbackkit.refs import Reference, Version
    from rollbackkit.registry import Registry, VerifyReport, VersionInfo
    from rollbackkit.schema import Schema


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
