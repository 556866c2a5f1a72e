"""joblib and pickle files: loading them runs any code they hold, so only with ``--unsafe``.

The file is refused before a byte is unpickled unless the operator passed ``--unsafe`` at
register (recorded as ``registration.unsafe`` and flagged by ``show``); a load repeats the
check against the manifest. The object must have scikit-learn's predict API.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS, describe_error
from rollbackkit.bundle.flavors.base import Flavor, Scorer, Stored
from rollbackkit.bundle.flavors.scikit_learn import scorer_of
from rollbackkit.errors import InvalidInput, UntrustedModel

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import Component


class PickleFlavor(Flavor):
    """Any object with a predict() method, unpickled by joblib: never without ``--unsafe``."""

    name = "pickle"
    label = "pickle"
    library = "joblib"
    formats: ClassVar[dict[str, str]] = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}
    packages = ("sklearn", "joblib")
    safe = False

    def accepts(self, obj: Any) -> bool:
        """Never chosen for an object: in-memory models are stored in a safe format."""
        return False

    def save(self, model: Any, out: Path) -> Stored:
        """Refused: rollbackkit never writes a pickle."""
        raise InvalidInput(
            "rollbackkit never pickles a model.", "Register the object itself (stored safely), or a file with --unsafe."
        )

    def accept_file(self, path: Path, fmt: str, origin: str, trust: tuple[str, ...], unsafe: bool) -> Stored:
        """Refuse the file unless ``unsafe`` (before anything is unpickled)."""
        if not unsafe:
            from rollbackkit.bundle.flavors import safe_files

            raise UntrustedModel(
                f"{origin} is a {fmt} file: loading it runs any code it holds, so it is not loaded without --unsafe.",
                "Pass --unsafe if you trust the file (show will flag the version), or save the model in a safe "
                f"format ({safe_files()}).",
            )
        return Stored(path, fmt)

    def load(self, data: bytes, component: Component, origin: str) -> Scorer:
        """Unpickle (runs the file's code: the caller checked ``--unsafe``)."""
        joblib = self.library_module()
        try:
            model = joblib.load(io.BytesIO(data))
        except USER_CODE_ERRORS as exc:
            raise InvalidInput(
                f"The model in {origin} cannot be loaded: {describe_error(exc)}.",
                "Check the file and the library version it was saved with.",
            ) from exc
        return scorer_of(model, origin)


FLAVOR = PickleFlavor()
