"""Verified bundles in memory: a cheap description (schema, configs, code) and a loaded model."""

from __future__ import annotations

import io
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS, Preprocess, describe_error, identity
from rollbackkit.bundle.compat import Adaptation, apply_adaptation, check
from rollbackkit.bundle.flavors import for_format
from rollbackkit.bundle.flavors.base import Scorer
from rollbackkit.bundle.frames import part
from rollbackkit.bundle.manifest import Manifest
from rollbackkit.bundle.model_inputs import model_features
from rollbackkit.bundle.runtime import RuntimeReport, compare
from rollbackkit.bundle.schema import Schema
from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import IncompatibleInput, IncompatibleRuntime, InvalidInput

if TYPE_CHECKING:
    from rollbackkit.bundle.version import VersionInfo

Reader = Callable[[str], bytes]


@dataclass(eq=False)
class BundleDescription(HasCard):
    """Everything about a version except its model: cheap to read, every byte verified.

    Attributes:
        info: The version's tag data.
        manifest: Its manifest.
        schema: Input features and output contract.
        serving: Parsed ``serving.yaml``.
        gates: Parsed ``gates.yaml``.
        preprocess_source: The text of ``preprocess.py`` (None when the bundle has none).
    """

    info: VersionInfo
    manifest: Manifest
    schema: Schema
    serving: dict[str, Any]
    gates: dict[str, Any]
    preprocess_source: str | None
    _read: Reader = field(repr=False)

    @classmethod
    def from_reader(cls, info: VersionInfo, manifest: Manifest, read: Reader) -> BundleDescription:
        """Read the small components through ``read`` (which verifies each role's bytes)."""
        return cls(**_small_parts(info, manifest, read))

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

    @cached_property
    def reference(self) -> pd.DataFrame:
        """The reference profile (``input:``, ``output:`` and ``label:`` columns)."""
        return pd.read_parquet(io.BytesIO(self._read("reference")))

    @cached_property
    def golden(self) -> pd.DataFrame:
        """The golden sample (``input:``, ``feature:`` and ``output:`` columns)."""
        return pd.read_parquet(io.BytesIO(self._read("golden")))

    @cached_property
    def model_code(self) -> str | None:
        """A Python model's ``model.py`` text, read from the verified archive and never run (None: no code)."""
        if self.manifest.components["model"].format != "python-model":
            return None
        from rollbackkit.bundle.flavors.python_model import model_source

        return model_source(self._read("model"), self.info.tag)

    def reference_part(self, prefix: str) -> pd.DataFrame:
        """One part of the reference profile: ``input``, ``output`` or ``label``."""
        return part(self.reference, prefix)

    def card(self) -> Card:
        """Its card: model, output contract, features (counts, folded names), gates, preprocessing."""
        from rollbackkit.bundle.card_views import bundle_card

        return bundle_card(self, loaded=isinstance(self, LoadedBundle))


@dataclass(eq=False)
class LoadedBundle(BundleDescription):
    """One version in memory, ready to score. Every byte was checked against the manifest.

    Attributes:
        scorer: The loaded model of its flavor (scores features into the output contract).
        preprocess: ``preprocess(frame) -> frame`` (identity when the bundle has none).
        runtime: The runtime recorded at register compared with this one (empty for a
            manifest without one); a major-version difference is a warning in it.
    """

    scorer: Scorer | None = None
    preprocess: Preprocess = identity
    runtime: RuntimeReport = field(default_factory=RuntimeReport)

    @property
    def model(self) -> Any:
        """The library's own model object (estimator, Booster, ONNX session, ...)."""
        return self._scorer.native

    @property
    def _scorer(self) -> Scorer:
        assert self.scorer is not None, "a LoadedBundle is built with its scorer"
        return self.scorer

    def score_features(self, features: pd.DataFrame) -> pd.DataFrame:
        """Score preprocessed model features into the output contract's columns (no input checks)."""
        return self._scorer.score(features)

    @classmethod
    def from_components(cls, info: VersionInfo, manifest: Manifest, read: Reader) -> LoadedBundle:
        """Assemble a bundle from a reader that returns each role's verified bytes.

        The model is refused before its bytes are read when the manifest needs what was not
        trusted at register (its flavor's ``check_trust``) or a library here is known not to
        load its file (:mod:`rollbackkit.bundle.runtime`), then loaded by its flavor.

        Raises:
            IncompatibleRuntime: A library here cannot load the model file.
        """
        component = manifest.components["model"]
        flavor = for_format(component.format, info.tag)
        flavor.check_trust(component, manifest.registration, info.tag)
        runtime = compare(manifest.registration.runtime, component.path)
        if runtime.incompatible:
            bad = runtime.incompatible[0]
            raise IncompatibleRuntime(
                f"{info.tag}: {bad.detail}.",
                f"Install {bad.library} {bad.registered} here (the version it was registered with), or re-register "
                "the model from this environment.",
            )
        scorer = flavor.load(read("model"), component, info.tag)
        parts = _small_parts(info, manifest, read)
        source = parts["preprocess_source"]
        prep = _module_preprocess(source, info.tag) if source else identity
        return cls(**parts, scorer=scorer, preprocess=prep, runtime=runtime)

    def features(self, inputs: pd.DataFrame, adaptation: Adaptation | None = None) -> pd.DataFrame:
        """What the model gets for raw inputs (see :meth:`predict` for ``adaptation``): the
        preprocessed frame cut to the model's feature names, in its trained order
        (:func:`rollbackkit.bundle.model_inputs.model_features`)."""
        return self.select_features(self.preprocess(self._checked(inputs, adaptation).copy()))

    def select_features(self, features: pd.DataFrame, *, strict: bool = True) -> pd.DataFrame:
        """``preprocess()``'s output cut to the model's feature names in their trained order.

        Raises:
            InvalidInput: ``strict`` and the output lacks a model feature (named).
        """
        code = f"{self.info.tag} preprocess.py" if self.preprocess_source else f"{self.info.tag}'s input"
        return model_features(self._scorer, features, code, strict=strict)

    def predict(self, inputs: pd.DataFrame, adaptation: Adaptation | None = None) -> pd.DataFrame:
        """Score raw inputs into the output contract's columns.

        Without ``adaptation`` the frame must pass :func:`rollbackkit.bundle.compat.check` (the rule
        of ``rollbackkit check``, value domains and missing values included) with exactly the
        trained columns in order; the lossless casts the check declares are applied.

        Args:
            inputs: Exactly the trained columns in order, unless ``adaptation`` is given.
            adaptation: A declared adaptation from a check the caller ran (the serving layer
                checks each request's columns and dtypes); applied first, nothing else is
                dropped, reordered or cast implicitly.

        Raises:
            IncompatibleInput: The check calls the frame incompatible, or it needs columns
                dropped or reordered and no adaptation was given.
        """
        return self.score_features(self.features(inputs, adaptation))

    def _checked(self, inputs: pd.DataFrame, adaptation: Adaptation | None) -> pd.DataFrame:
        how = (
            "Check it with rollbackkit.bundle.compat.check(bundle, frame) and pass the report's adaptation: "
            "bundle.predict(frame, adaptation=report.adaptation)."
        )
        if not all(isinstance(c, str) for c in inputs.columns):  # numbered columns (a numpy frame) by their names
            inputs = inputs.rename(columns=str)
        if adaptation is None:
            report = check(self.schema, inputs)
            if report.columns():
                raise IncompatibleInput(
                    f"{self.info.tag} cannot score this frame: {report.said(3)}.",
                    "Fix those columns; rollbackkit.bundle.compat.check(bundle, frame) lists every finding.",
                )
            adaptation = Adaptation(casts=report.adaptation.casts)
            if report.adaptation.drop or report.adaptation.reorder:
                differ = (
                    "the same columns in another order"
                    if not report.adaptation.drop
                    else f"columns it was not trained on too ({', '.join(report.adaptation.drop[:3])}"
                    + (", ..." if len(report.adaptation.drop) > 3 else "")
                    + ")"
                )
                raise IncompatibleInput(
                    f"{self.info.tag} was trained on {len(self.schema.feature_names)} columns in a fixed order; "
                    f"this frame has {differ}.",
                    how,
                )
        inputs = apply_adaptation(inputs, adaptation, self.schema, self.info.tag)
        if [str(c) for c in inputs.columns] != self.schema.feature_names:
            raise IncompatibleInput(
                f"{self.info.tag} was trained on {len(self.schema.feature_names)} columns in a fixed order; "
                f"this frame has {len(inputs.columns)} that differ.",
                how,
            )
        return inputs


def _small_parts(info: VersionInfo, manifest: Manifest, read: Reader) -> dict[str, Any]:
    from rollbackkit.yamlsafe import load

    hint = "Run 'rollbackkit verify --all'; re-register the bundle with a valid file."
    return {
        "info": info,
        "manifest": manifest,
        "schema": Schema.from_json(read("schema"), f"{info.tag} schema.json"),
        "serving": load(read("serving"), f"{info.tag} serving.yaml", hint) or {},
        "gates": load(read("gates"), f"{info.tag} gates.yaml", hint) or {},
        "preprocess_source": read("preprocess").decode() if "preprocess" in manifest.components else None,
        "_read": read,
    }


def _module_preprocess(source: str, origin: str) -> Preprocess:
    module = types.ModuleType("rollbackkit_bundle_preprocess")
    try:
        exec(compile(source, f"<{origin} preprocess.py>", "exec"), module.__dict__)
    except USER_CODE_ERRORS as exc:  # sys.exit() at import must not stop a server or a CLI command
        raise InvalidInput(
            f"{origin}: preprocess.py fails to import: {describe_error(exc)}.",
            "Register a version whose preprocessing imports cleanly.",
        ) from exc
    func = module.__dict__.get("preprocess")
    if not callable(func):
        raise InvalidInput(f"{origin}: preprocess.py defines no preprocess().", "Re-register with a valid file.")
    return func  # type: ignore[no-any-return]
