"""The registry facade: :class:`Registry` binds one module per operation, dvc-style.

Versions live on git + DVC (see DESIGN.md): ``bundles/NAME/`` holds ``bundle.yaml`` and the
components; text components are committed to git, binary ones are tracked by DVC and pushed
to the DVC remote. A version is the annotated GTO tag ``NAME@vX.Y.Z`` on the commit that
registered it (:mod:`~rollbackkit.registry.tags`); ``gto show`` and ``dvc artifacts get``
read the registry as it is.

Where each operation lives: reading and finding versions in
:mod:`~rollbackkit.registry.repository`; ``NAME#ENV`` and assignments in
:mod:`~rollbackkit.registry.assignments`; integrity in :mod:`~rollbackkit.registry.verify`;
verified contents in :mod:`~rollbackkit.registry.contents`; register in
:mod:`~rollbackkit.registry.register`; restore in :mod:`~rollbackkit.registry.restore`
(files written by :mod:`~rollbackkit.registry.materialise`); crash recovery in
:mod:`~rollbackkit.registry.recover` (``rollbackkit recover``:
:mod:`~rollbackkit.registry.finish_register`); compatibility, parity and preflight in
:mod:`~rollbackkit.registry.checks`. Mutations hold the repository lock
(:func:`rollbackkit.locking.repo_lock`) for their whole run.

The facade is for the faces (the public API, the CLI, widgets, demo). Code below them
(serving, ops) takes a :class:`~rollbackkit.registry.repository.Repository` and calls the
operation modules directly, so this module is imported by few and not a hub both ways.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.bundle.manifest import Manifest, atomic_write
from rollbackkit.bundle.version import VersionInfo
from rollbackkit.locking import repo_lock
from rollbackkit.project import DEFAULT_REMOTE_DIR, DEFAULT_REMOTE_NAME, ProjectPaths
from rollbackkit.refs import Reference
from rollbackkit.registry import assignments, checks, contents, finish_register, register, restore, verify
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.restore import RestoreResult
from rollbackkit.registry.verify import VerifyReport

if TYPE_CHECKING:
    import pandas as pd

    from rollbackkit.analysis.parity import ParityReport
    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.bundle.artifacts import Preprocess
    from rollbackkit.bundle.compat import CompatReport, Thresholds
    from rollbackkit.bundle.model import BundleDescription, LoadedBundle


class Registry(Repository):
    """The bundle registry of one git + DVC repository.

    Args:
        repo: Any path inside the repository's work tree.
    """

    # ------------------------------------------------------------------ set-up
    @classmethod
    def init(cls, repo: str | Path = ".", remote: str | None = None) -> Registry:
        """Set up rollbackkit in an existing git repo: DVC, a default remote, config; commit.

        Args:
            repo: Path inside the git repository.
            remote: DVC remote URL or directory (default: ``.rollbackkit/dvc-remote``, a
                local directory remote stored relative to the project, so a copy of the
                project writes into its own). An ``s3://`` URL works the same through dvc-s3.
        """
        registry = cls(repo)
        paths = registry.paths
        with repo_lock(paths.lock_file):
            registry.dvc.init()
            if remote is None:
                registry.dvc.set_remote(DEFAULT_REMOTE_NAME, str(registry.root / DEFAULT_REMOTE_DIR), relative=True)
            else:
                url = remote if "://" in remote else str(Path(remote).expanduser().resolve())
                registry.dvc.set_remote(DEFAULT_REMOTE_NAME, url)
            if not paths.config_file.exists():
                atomic_write(paths.config_file, "# rollbackkit project configuration\nbundles_dir: bundles\n")
            atomic_write(paths.config_dir / ".gitignore", "/local/\n/dvc-remote/\n")
            to_commit = [p for p in (".dvc", ".dvcignore", ".rollbackkit") if (registry.root / p).exists()]
            if registry.git.dirty_paths(to_commit) or registry.git.run(
                "ls-files", "--others", "--exclude-standard", "--", *to_commit
            ):
                registry.git.commit_paths(to_commit, "rollbackkit: initialise DVC and rollbackkit")
        return registry

    # ------------------------------------------------------------------ reading
    def resolve(self, ref: str | Reference) -> VersionInfo:
        """Resolve ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#ENV`` to a version.

        ``NAME#ENV`` is what serves ENV (:meth:`Deployments.state
        <rollbackkit.registry.assignments.Deployments.state>`): the live version, not a running canary.
        """
        return assignments.resolve(self, ref)

    def _info(self, ref: str | Reference | VersionInfo) -> VersionInfo:
        return ref if isinstance(ref, VersionInfo) else self.resolve(ref)

    def manifest(self, ref: str | Reference | VersionInfo) -> Manifest:
        """The verified manifest of a version, read from git (no checkout)."""
        return verify.verified_manifest(self, self._info(ref))

    def show(self, ref: str | Reference) -> dict[str, Any]:
        """Everything about one version: tag data, components, schema, flags (JSON-ready)."""
        import json

        from rollbackkit.bundle.flavors import unsafe_format
        from rollbackkit.bundle.runtime import compare
        from rollbackkit.registry.mlflow_sync import origin_of

        info = self.resolve(ref)
        manifest = self.manifest(info)
        base = f"{ProjectPaths.bundle_relpath(info.name)}"
        schema = json.loads(self.git.blob(info.commit, f"{base}/{manifest.components['schema'].path}"))
        model = manifest.components["model"]
        return {
            **info.to_dict(),
            "components": {
                role: c.model_dump(mode="json", exclude_none=True) for role, c in manifest.components.items()
            },
            "schema": schema,
            "flavor": schema.get("estimator", {}).get("flavor", "sklearn"),
            "unsafe_model_format": unsafe_format(model.format),
            "unsafe_allowed": manifest.registration.unsafe,
            "trusted_types": list(model.trusted_types),
            "trusted_by_operator": list(manifest.registration.trust),
            "runtime": runtime.model_dump(mode="json") if (runtime := manifest.registration.runtime) else None,
            "runtime_here": compare(runtime, model.path).to_dict(),
            "source": origin.to_dict() if (origin := origin_of(self, info.name, info.version)) else None,
            "own_code": _own_code(schema),
            "raw_inputs": raw.to_dict() if (raw := manifest.registration.raw_inputs) else None,
            "ignored": list(manifest.ignored),
        }

    def ensure_cached(self, md5s: Iterable[str], tag: str | None = None) -> None:
        """Pull objects that the local DVC cache lacks from the remote (errors name ``tag``)."""
        contents.ensure_cached(self, md5s, tag)

    def read_component(self, info: VersionInfo, manifest: Manifest, role: str) -> bytes:
        """The verified bytes of one component (from git or the DVC cache/remote)."""
        return contents.read_component(self, info, manifest, role)

    def describe(self, ref: str | Reference | VersionInfo) -> BundleDescription:
        """A version's schema, configs and preprocessing code (verified; no model loaded)."""
        return contents.describe(self, self._info(ref))

    def load(self, ref: str | Reference | VersionInfo) -> LoadedBundle:
        """Load a version (model, schema, configs, preprocessing) after verifying every byte."""
        return contents.load(self, self._info(ref))

    # ------------------------------------------------------------------ integrity
    def verify(self, ref: str | Reference | None = None) -> VerifyReport:
        """Re-hash every component of one version (or all, when ``ref`` is None).

        Checks the tag against its commit and the journal, the manifest against its id, git
        components against their blobs, and DVC components in the local cache and remote.
        """
        infos = [self.resolve(ref)] if ref is not None else self.versions()
        return verify.verify(self, infos, everything=ref is None)

    # ------------------------------------------------------------------ compatibility
    def check(
        self,
        ref: str | Reference | VersionInfo,
        features: pd.DataFrame | str | Path,
        thresholds: Thresholds | None = None,
    ) -> CompatReport:
        """Can version ``ref`` score this live frame (compatible / adaptable / incompatible)?"""
        return checks.check(self, self._info(ref), features, thresholds)

    def parity(
        self, ref: str | Reference | VersionInfo, preprocess: str | Path | Preprocess | None = None
    ) -> ParityReport:
        """Re-run preprocessing on the version's golden inputs and compare features and outputs.

        Args:
            ref: The version.
            preprocess: The code to check: a ``.py`` file, a function, or None for the file the
                version was registered from as it is in the repo now.
        """
        return checks.parity(self, self.load(ref), preprocess)

    def preflight(
        self,
        ref: str | Reference | VersionInfo,
        features: pd.DataFrame | str | Path | None = None,
        *,
        consumer: str | None = None,
        preprocess: str | Path | Preprocess | None = None,
        thresholds: Thresholds | None = None,
    ) -> PreflightReport:
        """One verdict before a deploy or rollback: compatibility, parity, output contract.

        Args:
            ref: The version about to serve.
            features: A sample of live features (frame or CSV/Parquet path); skipped if None.
            consumer: Whose output contract consumers expect: a reference such as
                ``NAME#prod`` (default: what serves ``prod`` now, else the latest version).
            preprocess: Code for the parity check (see :meth:`parity`).
            thresholds: Domain-drift limits for the compatibility check.
        """
        return self.preflight_bundle(
            self.load(ref), features, consumer=consumer, preprocess=preprocess, thresholds=thresholds
        )

    def preflight_bundle(
        self,
        bundle: LoadedBundle,
        features: pd.DataFrame | str | Path | None = None,
        *,
        consumer: str | None = None,
        preprocess: str | Path | Preprocess | None = None,
        thresholds: Thresholds | None = None,
    ) -> PreflightReport:
        """:meth:`preflight` for a bundle that is already loaded (as a server has it)."""
        return checks.preflight_bundle(
            self, bundle, features, consumer=consumer, preprocess=preprocess, thresholds=thresholds
        )

    # ------------------------------------------------------------------ mutations
    def restore(self, ref: str | Reference | VersionInfo, to: str | Path | None = None) -> RestoreResult:
        """Restore a version's files, verified byte for byte.

        Args:
            ref: The version to restore.
            to: Materialise the bundle (manifest + components) into this directory instead
                of the workspace; the workspace is not touched.
        """
        return restore.restore(self, self._info(ref), to)

    def register(
        self,
        name: str,
        model: Any,
        train_data: pd.DataFrame | str | Path | None = None,
        *,
        target: str | None = None,
        validation_data: pd.DataFrame | str | Path | None = None,
        preprocess: str | Path | None = None,
        serving: str | Path | dict[str, Any] | None = None,
        gates: str | Path | dict[str, Any] | None = None,
        version: str | None = None,
        bump: str = "patch",
        message: str = "",
        trust: Iterable[str] = (),
        features: Iterable[str] | None = None,
        unsafe: bool = False,
        flavor: str | None = None,
        tracking_uri: str | None = None,
    ) -> VersionInfo:
        """Register one immutable version of bundle ``name``.

        Crash-safe: a process killed at any point leaves no tag or a complete version (the
        order is in :mod:`rollbackkit.registry.register`). Only ``bundles/NAME/`` and
        ``dvc.yaml`` are committed; uncommitted edits to ``dvc.yaml`` make it refuse.

        Args:
            name: Bundle name (``churn``, ``credit-risk``).
            model: A fitted model (scikit-learn estimator or pipeline, XGBoost, LightGBM or
                CatBoost model or an ONNX ``ModelProto``, in memory), or a model file
                (``.skops``, ``.json``/``.ubj``, ``.txt``, ``.cbm``, ``.onnx``, a Python
                model's ``.zip``; ``.joblib``/``.pkl``/``.pickle`` with ``unsafe``), or a
                directory holding a ``model.py`` (see :mod:`rollbackkit.bundle.flavors`), or an
                MLflow model: ``models:/NAME/N``, ``models:/NAME@alias``, ``runs:/RUN/PATH`` or a
                directory with an ``MLmodel`` file (:mod:`rollbackkit.registry.mlflow_source`).
            train_data: Training frame (or CSV/Parquet path) with raw input features (an
                MLflow model may leave it out: its input example stands in).
            target: Label column in the data (dropped from features, kept as reference labels).
            validation_data: Held-out frame for the reference profile (default: a sample of
                train_data). Pass one: prediction-drift gates compare live scores with the
                reference, and a flexible model's in-sample scores are overconfident, so a
                training-sample reference makes healthy traffic look drifted.
            preprocess: A ``.py`` file defining ``preprocess(frame) -> frame``.
            serving: ``serving.yaml`` path or dict (default: predict + probabilities).
            gates: ``gates.yaml`` path or dict (default: error rate, latency, drift).
            version: Explicit ``vX.Y.Z``; otherwise the latest version bumped by ``bump``.
            bump: ``major``, ``minor`` or ``patch``.
            message: Free text stored in the tag.
            trust: Types beyond skops' defaults and the reviewed list
                (:data:`rollbackkit.bundle.flavors.scikit_learn.REVIEWED_TYPES`) that a ``.skops`` file may
                load; recorded in the manifest and shown by :meth:`show`.
            features: The model's raw input columns, in order; other columns of the data
                are left out. The rule and its defaults: :mod:`rollbackkit.registry.raw_inputs`.
            unsafe: Allow a ``.joblib``/``.pkl``/``.pickle`` model: unpickling runs any code the file
                holds. Recorded in the manifest; :meth:`show` warns. Without it such a
                file is refused before it is read.
            flavor: The model's flavor (``sklearn``, ``xgboost``, ...) when its library or
                suffix does not say it (see :func:`rollbackkit.bundle.flavors.names`).
            tracking_uri: The MLflow tracking server of a ``models:/``/``runs:/`` model
                (default: ``MLFLOW_TRACKING_URI``).

        Returns:
            The new version, with ``raw_inputs``: its raw input columns and how they were chosen.
        """
        return register.register(
            self,
            name,
            model,
            train_data,
            target=target,
            validation_data=validation_data,
            preprocess=preprocess,
            serving=serving,
            gates=gates,
            version=version,
            bump=bump,
            message=message,
            trust=trust,
            features=features,
            unsafe=unsafe,
            flavor=flavor,
            tracking_uri=tracking_uri,
        )

    def recover(self) -> str | None:
        """Finish cleaning up after a register that was killed; returns what was done.

        Every mutating command does the register part on its own first; ``rollbackkit
        recover`` also clears what those refuse to guess about: an unreadable intent record
        and a damaged journal tail or head are moved aside under names that say why, and the
        move is recorded in the journal.
        """
        return finish_register.recover(self)


def _own_code(schema: dict[str, Any]) -> dict[str, str] | None:
    """A Python model's ``model.py`` and its hash: code that runs at register, load and serve."""
    estimator = schema.get("estimator", {})
    digest = (estimator.get("params") or {}).get("model.py")
    if estimator.get("flavor") != "python" or not isinstance(digest, str):
        return None
    return {"file": "model.py", "sha256": digest.removeprefix("sha256:")}
