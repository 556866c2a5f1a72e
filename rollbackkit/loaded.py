"""A loaded, verified bundle: model, preprocessing, schema and configs, ready to score."""

from __future__ import annotations

import io
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.artifacts import Preprocess, identity, load_model_bytes
from rollbackkit.bundle import Manifest
from rollbackkit.errors import InvalidInput
from rollbackkit.frames import part
from rollbackkit.schema import Schema, output_frame

if TYPE_CHECKING:
    from rollbackkit.registry import VersionInfo

Reader = Callable[[str], bytes]


@dataclass(eq=False)
class LoadedBundle:
    """One version in memory. Every byte was checked against the manifest before use.

    Attributes:
        info: The version's tag data.
        manifest: Its manifest.
        schema: Input features and output contract.
        serving: Parsed ``serving.yaml``.
        gates: Parsed ``gates.yaml``.
        model: The deserialised estimator.
        preprocess: ``preprocess(frame) -> frame`` (identity when the bundle has none).
    """

    info: VersionInfo
    manifest: Manifest
    schema: Schema
    serving: dict[str, Any]
    gates: dict[str, Any]
    model: Any
    preprocess: Preprocess
    preprocess_source: str | None
    _read: Reader = field(repr=False)

    @classmethod
    def from_components(cls, info: VersionInfo, manifest: Manifest, read: Reader) -> LoadedBundle:
        """Assemble a bundle from a reader that returns each role's verified bytes."""
        import yaml

        model_comp = manifest.components["model"]
        model = load_model_bytes(read("model"), model_comp.format or "skops", model_comp.trusted_types)
        source = read("preprocess").decode() if "preprocess" in manifest.components else None
        return cls(
            info=info,
            manifest=manifest,
            schema=Schema.from_json(read("schema")),
            serving=yaml.safe_load(read("serving")) or {},
            gates=yaml.safe_load(read("gates")) or {},
            model=model,
            preprocess=_module_preprocess(source, info.tag) if source else identity,
            preprocess_source=source,
            _read=read,
        )

    @property
    def name(self) -> str:
        """Bundle name."""
        return self.info.name

    @property
    def version(self) -> str:
        """Version string, e.g. ``v1.0.0``."""
        return self.info.version

    @property
    def bundle_id(self) -> str:
        """Content hash of the manifest."""
        return self.manifest.bundle_id

    def features(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Preprocessed model features for raw input columns."""
        return self.preprocess(inputs[self.schema.feature_names].copy())

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Score raw inputs into the output contract's columns."""
        return output_frame(self.model, self.features(inputs))

    @cached_property
    def reference(self) -> pd.DataFrame:
        """The reference profile (``input:``, ``output:`` and ``label:`` columns)."""
        return pd.read_parquet(io.BytesIO(self._read("reference")))

    @cached_property
    def golden(self) -> pd.DataFrame:
        """The golden sample (``input:``, ``feature:`` and ``output:`` columns)."""
        return pd.read_parquet(io.BytesIO(self._read("golden")))

    def reference_part(self, prefix: str) -> pd.DataFrame:
        """One part of the reference profile: ``input``, ``output`` or ``label``."""
        return part(self.reference, prefix)


def _module_preprocess(source: str, origin: str) -> Preprocess:
    module = types.ModuleType("rollbackkit_bundle_preprocess")
    try:
        exec(compile(source, f"<{origin} preprocess.py>", "exec"), module.__dict__)
    except Exception as exc:
        raise InvalidInput(
            f"{origin}: preprocess.py fails to import: {exc!r}.",
            "Register a version whose preprocessing imports cleanly.",
        ) from exc
    func = module.__dict__.get("preprocess")
    if not callable(func):
        raise InvalidInput(f"{origin}: preprocess.py defines no preprocess().", "Re-register with a valid file.")
    return func  # type: ignore[no-any-return]
