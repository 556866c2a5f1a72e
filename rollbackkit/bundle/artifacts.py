"""User code in a bundle: preprocessing loaded from hash-verified text, and its errors in one line.

Model files are the flavors' business (:mod:`rollbackkit.bundle.flavors`); every artifact is
deserialised only after its bytes match the manifest's hash (the caller's duty, see
``Registry.load``); at register, from the copy that is hashed.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rollbackkit.errors import InvalidInput, InvalidPath

# What user preprocessing code may raise: sys.exit() or a stray KeyboardInterrupt must end
# as one error naming the file, never as a silent exit 0 of register.
USER_CODE_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit, KeyboardInterrupt)
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
Preprocess = Callable[[pd.DataFrame], pd.DataFrame]


def validate_trust(trust: tuple[str, ...]) -> tuple[str, ...]:
    """Check that each ``--trust`` value is one fully qualified name (no prefix, no pattern)."""
    for name in trust:
        if not _TYPE_NAME.fullmatch(name):
            raise InvalidInput(
                f"--trust {name!r} is not a fully qualified type name.",
                "Name one type per --trust, as the refusal listed it, e.g. mypackage.module.MyEstimator.",
            )
    return tuple(sorted(set(trust)))


def load_preprocess(path: Path, where: str = "") -> Preprocess:
    """Import ``preprocess(frame) -> frame`` from a Python file (already hash-verified).

    Whatever the import raises, ``sys.exit()`` included, becomes one error naming the file
    (``where``, default ``path``).
    """
    where = where or str(path)
    try:  # the bundle stores the code as text: refuse what a load could not decode
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start}).", "Save it as UTF-8."
        ) from exc
    except OSError as exc:
        raise InvalidPath(f"{where} cannot be read: {exc.strerror}.", "Check the --preprocess path.") from exc
    module_name = f"_rollbackkit_preprocess_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{where} is not a Python module.", "Pass a .py file.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except USER_CODE_ERRORS as exc:
        raise InvalidInput(f"Importing {where} failed: {describe_error(exc)}.", "Fix the preprocessing code.") from exc
    finally:
        sys.modules.pop(module_name, None)
    func = getattr(module, "preprocess", None)
    if not callable(func):
        raise InvalidInput(
            f"{where} defines no preprocess(frame) function.",
            "Add 'def preprocess(frame: pd.DataFrame) -> pd.DataFrame'.",
        )
    return func  # type: ignore[no-any-return]


def describe_error(exc: BaseException) -> str:
    """``Type: message`` on one line (at most ~300 characters), for errors from user code or files."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def identity(frame: pd.DataFrame) -> pd.DataFrame:
    """The default preprocessing: the frame as it is (the model may be a Pipeline)."""
    return frame
