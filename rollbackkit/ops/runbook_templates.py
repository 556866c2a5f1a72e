"""Runbook templates and their parameters: find a template, read what it declares, check values.

A template is a notebook with a cell tagged ``parameters``. Values are checked against the
declared names and types before anything runs, and reach the notebook only as literals:
:func:`check_injection` parses papermill's injected cell back.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollbackkit.errors import InvalidInput, InvalidPath
from rollbackkit.project import TEMPLATES as PACKAGE_TEMPLATES

TEMPLATES = PACKAGE_TEMPLATES / "runbooks"
_TEMPLATE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PARAM_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


@dataclass(frozen=True)
class Parameter:
    """A parameter a template declares in its ``parameters`` cell."""

    name: str
    type: str
    default: Any
    help: str = ""


def templates() -> dict[str, Path]:
    """The runbook templates shipped with rollbackkit, by name."""
    return {p.stem: p for p in sorted(TEMPLATES.glob("*.ipynb"))}


def template_path(template: str | Path) -> Path:
    """A template by name (``rollback``) or a path to a notebook with a ``parameters`` cell."""
    text = str(template)
    if _TEMPLATE_RE.fullmatch(text):
        found = templates().get(text)
        if found is None:
            raise InvalidInput(f"There is no runbook template {text!r}.", f"Use one of: {', '.join(templates())}.")
        return found
    path = Path(text)
    if path.suffix != ".ipynb" or not path.is_file():
        raise InvalidPath(f"{text} is neither a template name nor a notebook file.", "See rollbackkit runbook list.")
    return path


def declared_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters a template declares: name, type, default, help.

    The type is the cell's annotation (``since: str = ""``), else the default's type.
    """
    import papermill

    declared = papermill.inspect_notebook(str(path))
    if not declared:
        raise InvalidInput(f"{path} has no cell tagged 'parameters'.", "Tag the cell that holds the defaults.")
    params = {}
    for name, info in declared.items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            default = None
        annotated = str(info.get("inferred_type_name") or "")
        kind = annotated if annotated in _PARAM_TYPES else type(default).__name__
        kind = kind if kind in _PARAM_TYPES else "str"
        params[name] = Parameter(name, kind, default, str(info.get("help") or ""))
    return params


def coerce_parameters(given: Mapping[str, Any], declared: Mapping[str, Parameter]) -> dict[str, Any]:
    """Check names and types; strings from the command line become the declared type.

    Raises:
        InvalidInput: an unknown name, or a value that is not of (or convertible to) its type.
    """
    values: dict[str, Any] = {}
    for name, value in given.items():
        param = declared.get(name)
        if param is None:
            raise InvalidInput(f"The runbook has no parameter {name!r}.", f"Its parameters are: {', '.join(declared)}.")
        values[name] = _coerce(param, value)
    return values


def _coerce(param: Parameter, value: Any) -> Any:
    wanted = _PARAM_TYPES[param.type]
    if type(value) is wanted:
        return value
    if wanted is float and type(value) is int:
        return float(value)
    if isinstance(value, str):
        try:
            if wanted is bool:
                lowered = value.strip().lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            return wanted(value)
        except ValueError:
            pass
    raise InvalidInput(
        f"Parameter {param.name!r} must be {param.type}, got {value!r}.",
        f"Pass a {param.type} (its default is {param.default!r}).",
    )


def check_injection(values: Mapping[str, Any], kernel: str) -> None:
    """Parse papermill's injected cell back: it must assign exactly these literals."""
    from papermill.translators import translate_parameters

    source = translate_parameters(kernel, "python", dict(values), "Parameters")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InvalidInput("A parameter value cannot be passed safely.", "Remove unusual characters.") from exc
    seen = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise InvalidInput("A parameter value would have become code.", "Pass plain values only.")
        seen[node.targets[0].id] = ast.literal_eval(node.value)
    if seen != dict(values):
        raise InvalidInput("A parameter value would not reach the notebook unchanged.", "Pass plain values only.")
