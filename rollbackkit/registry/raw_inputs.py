"""The raw input columns a version records (what a caller sends), and its ``preprocess.py`` run on the data.

The one home of the rule (README's "Python API" states it for users; docstrings point here).
The data may be wider than the model. The raw inputs are, first that applies:

1. ``declared``: ``INPUTS = ["age", ...]`` in ``preprocess.py`` (strings, each once, all in the data);
2. ``given``: ``features=[...]`` (``--features``); both given, they must name the same columns. With a
   preprocess, it must give the model the same features from every column as from these (:func:`check_chosen`);
3. ``model``: without a preprocess, the feature names the model recorded, when the data has them all;
4. ``probed``: with a preprocess, every column but the target less those the model does not name
   and the preprocess does not need: it must give the model the very same features without them,
   tried together on every row, else on the first :data:`PROBE_ROWS` rows (compared with its output
   on those same rows): in halves while that pays, then one at a time, for at most
   :data:`MAX_PROBE_RUNS` runs; and confirmed on every row. When that confirmation fails, every row
   decides which of those columns may go (the others are kept, and ``reason`` names them). A column
   read for a derived feature stays. The probe sees only the training rows: a column the code reads
   only when it is present (``if "backup" in frame``) or only for rows the training data lacks is
   let go; declare ``INPUTS`` for such code (it is the fast path too);
5. ``all``: every column but the target, when nothing above decides. With a preprocess that is
   when the probe cannot: :data:`MAX_PROBE_RUNS` runs that do not decide, a preprocess that fails
   or gives other features on a second run on the same rows, or no column that may go on every row;
   the :class:`~rollbackkit.bundle.manifest.RawInputs` result says why.

The result is recorded in the manifest (``registration.raw_inputs``) and shown by ``show``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pandas as pd

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS, Preprocess, describe_error
from rollbackkit.bundle.flavors.base import Scorer
from rollbackkit.bundle.manifest import RawInputs
from rollbackkit.bundle.model_inputs import model_features
from rollbackkit.errors import InvalidInput

PROBE_ROWS = 256
"""Rows the columns are tried on one by one (the result is confirmed on every row)."""
MAX_PROBE_RUNS = 256
"""Runs of the preprocess on the first :data:`PROBE_ROWS` rows before the probe gives up (rule 5)."""
MAX_WHOLE_RUNS = 16
"""Runs on every row to find the columns read only past the first :data:`PROBE_ROWS` rows (they are kept)."""
HINT = "declare INPUTS = [...] in preprocess.py or pass features="


def declared_inputs(prep: Preprocess, where: str) -> list[str] | None:
    """``INPUTS`` as ``preprocess.py`` declares it (None: not declared); a malformed one is one InvalidInput line."""
    value = getattr(prep, "__globals__", {}).get("INPUTS")
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value or not all(isinstance(c, str) for c in value):
        raise InvalidInput(f"INPUTS in {where} must be a non-empty list of column names.", 'E.g. INPUTS = ["age"].')
    return list(value)


def input_columns(
    frame: pd.DataFrame,
    target: str | None,
    features: list[str] | None,
    scorer: Scorer | None,
    declared: list[str] | None = None,
) -> RawInputs | None:
    """The raw inputs rules 1-3 of this module choose in ``frame``, else None (the probe or ``all`` decides).

    Args:
        frame: The training data.
        target: The label column.
        features: ``features=``.
        scorer: The model, when there is no preprocess (its recorded names count then only).
        declared: ``INPUTS`` from preprocess.py.
    """
    if declared is not None:
        if features is not None and list(features) != declared:
            raise InvalidInput("--features and INPUTS in preprocess.py name different columns.", "Keep one of them.")
        return RawInputs(tuple(_checked(frame, target, declared, "INPUTS in preprocess.py")), rule="declared")
    if features is not None:
        return RawInputs(tuple(_checked(frame, target, features, "--features")), rule="given")
    present = [str(c) for c in frame.columns]
    names = scorer.input_names_as(present) if scorer is not None else None
    if names is not None and set(names) <= set(present):
        return RawInputs(tuple(names), rule="model")
    return None


def _checked(frame: pd.DataFrame, target: str | None, columns: list[str], what: str) -> list[str]:
    """``columns`` when they name columns of ``frame`` once each, the target aside; else one InvalidInput line."""
    present = [str(c) for c in frame.columns]
    if not columns:
        raise InvalidInput(f"{what} names no column.", "List the model's input columns, e.g. age,income.")
    unknown = [f for f in columns if f not in present]
    if unknown:
        raise InvalidInput(
            f"{what} names column(s) not in the training data: {', '.join(unknown[:5])}.",
            f"Choose from: {', '.join(present[:10])}{', ...' if len(present) > 10 else ''}.",
        )
    if target is not None and target in columns:
        raise InvalidInput(f"The target {target!r} is listed in {what}.", "Leave the label column out.")
    if len(set(columns)) != len(columns):
        raise InvalidInput(f"{what} lists a column twice.", "Name each column once.")
    return list(columns)


def inputs_of(frame: pd.DataFrame, target: str | None, columns: list[str] | None, what: str = "data") -> pd.DataFrame:
    """``frame``'s raw inputs: ``columns`` (None: all but the target); a missing one is one InvalidInput line."""
    if target is not None and target not in frame.columns:
        raise InvalidInput(
            f"Target column {target!r} is not in the {what}.",
            f"Choose one of: {', '.join(map(str, frame.columns[:10]))}{', ...' if len(frame.columns) > 10 else ''}.",
        )
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"The {what} lacks the recorded input column(s): {', '.join(missing[:5])}.",
                "Pass data with every column the version records as an input.",
            )
        return frame[columns]
    return frame if target is None else frame.drop(columns=[target])


def apply_preprocess(prep: Preprocess, frame: pd.DataFrame, what: str, code: str) -> pd.DataFrame:
    """``prep`` on a copy of ``frame``; its failure or a non-DataFrame answer is one InvalidInput line."""
    try:
        result = prep(frame.copy())
    except USER_CODE_ERRORS as exc:  # sys.exit() in user code must not end register with exit 0
        raise InvalidInput(
            f"{code} failed on the {what}: {describe_error(exc)}.", "Fix the preprocessing code."
        ) from exc
    if not isinstance(result, pd.DataFrame):
        raise InvalidInput(
            f"{code} returned {type(result).__name__}, not a DataFrame.",
            "Return a pandas DataFrame from preprocess().",
        )
    return result


def check_chosen(
    prep: Preprocess, every: pd.DataFrame, chosen: RawInputs, features: pd.DataFrame, scorer: Scorer, code: str
) -> None:
    """Rules 1-2 checked: ``prep`` gives the model ``features`` (from ``chosen.kept``) from ``every`` column too.

    A preprocess that gives other features on a second run of the same rows cannot be checked (let be).

    Raises:
        InvalidInput: ``INPUTS`` (or ``features=``) leaves out a column the preprocess reads.
    """
    kept = list(chosen.kept)
    if len(kept) == every.shape[1] or _steady(prep, every.iloc[:PROBE_ROWS][kept], scorer, code) is None:
        return
    got = _features(prep, every, scorer, code)
    if got is None or got.equals(features):
        return
    what = ("INPUTS in preprocess.py", "INPUTS") if chosen.rule == "declared" else ("--features", "--features")
    left = [str(c) for c in every.columns if c not in set(kept)]
    raise InvalidInput(
        f"{what[0]} leaves out columns {code} reads: the model's feature(s) {_listed(_differing(got, features))} "
        f"differ when it gets every column (left out: {_listed(left)}).",
        f"List every column preprocess() reads in {what[1]}.",
    )


def needed_columns(
    prep: Preprocess, inputs: pd.DataFrame, features: pd.DataFrame, scorer: Scorer, code: str = "preprocess()"
) -> RawInputs:
    """The raw columns of ``inputs`` that ``prep`` needs to give the model ``features`` (rules 4-5 of this module).

    Args:
        prep: The preprocessing.
        inputs: Every raw column but the target.
        features: What the model gets from ``prep(inputs)`` (cut to its feature names).
        scorer: The model (a model that recorded no names keeps every column).
        code: How messages name the preprocessing.
    """
    every = tuple(str(c) for c in inputs.columns)
    names = scorer.input_names_as(list(every))
    if names is None:
        return RawInputs(every, reason=f"the model recorded no feature names; {HINT}")
    candidates = [c for c in every if c not in set(names)]
    if not candidates:
        return RawInputs(every, rule="probed")
    named = [c for c in every if c in set(names)]
    if _same(prep, inputs[named], features, scorer, code):
        return RawInputs(tuple(named), tuple(candidates), "probed")
    sample = inputs.iloc[:PROBE_ROWS]
    want = _steady(prep, sample, scorer, code)
    if want is None:
        return RawInputs(every, reason=f"{code} fails or varies on the first {len(sample)} rows; {HINT}")

    def same_without(columns: list[str]) -> bool:
        return _same(prep, sample[[c for c in every if c not in set(columns)]], want, scorer, code)

    gone, undecided = _search(candidates, same_without, MAX_PROBE_RUNS)
    if undecided:
        return RawInputs(
            every,
            reason=f"{len(candidates)} columns the model does not name, and {MAX_PROBE_RUNS} runs of "
            f"{code} on them did not decide; {HINT}",
        )
    if _same(prep, inputs[[c for c in every if c not in set(gone)]], features, scorer, code):
        return RawInputs(
            tuple(c for c in every if c not in set(gone)), tuple(c for c in every if c in set(gone)), "probed"
        )

    def same_on_all_rows(columns: list[str]) -> bool:
        return _same(prep, inputs[[c for c in every if c not in set(columns)]], features, scorer, code)

    # Read only beyond the sample: the whole data decides which of the columns gone may go (the rest stay).
    gone_too, _ = _search(gone, same_on_all_rows, MAX_WHOLE_RUNS, first_whole=False)
    back = [c for c in gone if c not in set(gone_too)]
    if not gone_too:
        return RawInputs(
            every, reason=f"without any of {_listed(back)} the features differ on the whole training data; {HINT}"
        )
    return RawInputs(
        tuple(c for c in every if c not in set(gone_too)),
        tuple(c for c in every if c in set(gone_too)),
        "probed",
        f"{_listed(back)} kept: without it the features differ past the first {len(sample)} rows",
    )


def _search(
    candidates: list[str], same_without: Callable[[list[str]], bool], runs: int, first_whole: bool = True
) -> tuple[list[str], list[str]]:
    """The candidates that can go, and those ``runs`` runs left undecided (kept).

    Groups are halved when they cannot go whole, for half as many runs as there are candidates (halving
    pays when few are read); the columns left are then tried one at a time, each on top of those gone.
    ``first_whole=False``: the caller knows that all of them cannot go together.
    """
    gone: list[str] = []
    groups = [candidates] if first_whole else _halves(candidates)
    left, halving = runs, len(candidates) // 2
    while groups and halving > 0 and left > 0:
        group = groups.pop()
        halving, left = halving - 1, left - 1
        if same_without([*gone, *group]):
            gone.extend(group)
        elif len(group) > 1:
            groups += _halves(group)
    rest = [c for group in reversed(groups) for c in group]
    for i, column in enumerate(rest):
        if left == 0:
            return gone, rest[i:]
        left -= 1
        if same_without([*gone, column]):
            gone.append(column)
    return gone, []


def _halves(group: list[str]) -> list[list[str]]:
    """``group`` in two halves, the first last (it is popped first)."""
    return [group[len(group) // 2 :], group[: len(group) // 2]] if len(group) > 1 else [group]


def _listed(columns: list[str], most: int = 5) -> str:
    """``a, b, c and 3 more``."""
    return ", ".join(columns[:most]) + (f" and {len(columns) - most} more" if len(columns) > most else "")


def _differing(got: pd.DataFrame, want: pd.DataFrame) -> list[str]:
    """The model features (columns of ``want``) whose values ``got`` does not repeat."""
    return [str(c) for c in want.columns if c not in got.columns or not got[c].equals(want[c])] or list(
        map(str, want.columns)
    )


def _steady(prep: Preprocess, frame: pd.DataFrame, scorer: Scorer, code: str) -> pd.DataFrame | None:
    """What the model gets from ``prep(frame)`` when a second run gives the same (None: it fails or varies)."""
    want = _features(prep, frame, scorer, code)
    return want if want is not None and _same(prep, frame, want, scorer, code) else None


def _features(prep: Preprocess, frame: pd.DataFrame, scorer: Scorer, code: str) -> pd.DataFrame | None:
    """What the model gets from ``prep(frame)``; None when the code fails with an error (a column it needs is
    left out). Ctrl-C goes through; ``sys.exit()`` in the code is one InvalidInput line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = model_features(scorer, prep(frame.copy()))
    except Exception:
        return None
    except SystemExit as exc:
        raise InvalidInput(f"{code} called sys.exit() while register tried its inputs: {exc}.", HINT + ".") from exc
    return got if isinstance(got, pd.DataFrame) else None


def _same(prep: Preprocess, frame: pd.DataFrame, want: pd.DataFrame, scorer: Scorer, code: str) -> bool:
    """Whether ``prep`` gives the model exactly ``want`` from ``frame`` (the same rows ``want`` came from)."""
    got = _features(prep, frame, scorer, code)
    return got is not None and got.equals(want)
