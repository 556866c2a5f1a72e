"""The ``show`` screen: one version's tag, commit, components, model and schema, runtime, safety flags and
the registration fields a newer rollbackkit wrote that this one ignored."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from rollbackkit.bundle.forward import listed
from rollbackkit.bundle.manifest import RawInputs
from rollbackkit.screens.times import local
from rollbackkit.screens.versions import components


def render(console: Any, data: dict[str, Any]) -> None:
    """Print what :meth:`~rollbackkit.registry.store.Registry.show` returned, warnings in yellow.

    Args:
        console: The rich console.
        data: The version's description (``show --json`` prints it as is).
    """
    created = local(data["created"])
    console.print(f"[bold]{data['tag']}[/]  {data['bundle_id']}\ncommit {data['commit']}  created {created}")
    components(console, data)
    schema = data["schema"]
    console.print(
        f"{data['flavor']} model {schema['estimator']['type']}; {_features(schema)}; "
        f"output {schema['output']['kind']} ({', '.join(schema['output']['columns'])})"
    )
    _raw_inputs(console, data)
    _origin(console, data)
    _runtime(console, data)
    _safety(console, data)
    _ignored(console, data)


def _features(schema: dict[str, Any]) -> str:
    """``6 input features``, or ``8 raw inputs, 6 model features`` when the model sees other columns than sent."""
    raw, est = [f["name"] for f in schema["features"]], schema["estimator"]
    names = est.get("feature_names_in") or []
    model = len(names) or est.get("n_features_in")
    if model is None or (sorted(names) == sorted(raw) if names else model == len(raw)):
        return f"{len(raw)} input feature{'' if len(raw) == 1 else 's'}"
    return f"{len(raw)} raw input{'' if len(raw) == 1 else 's'}, {model} model feature{'' if model == 1 else 's'}"


def _raw_inputs(console: Any, data: dict[str, Any]) -> None:
    """The raw columns a caller sends and how register chose them (nothing for a version registered before)."""
    raw = data.get("raw_inputs")
    if raw:
        raw_inputs_line(console, RawInputs(tuple(raw["kept"]), tuple(raw["dropped"]), raw["rule"], raw["reason"]))


def raw_inputs_line(console: Any, raw: RawInputs) -> None:
    """``raw inputs: ...`` (register and ``show``): yellow when :meth:`RawInputs.warning` has something to say."""
    warning = raw.warning()
    label = "[yellow]raw inputs:[/]" if warning else "raw inputs:"
    console.print(f"{label} {escape(warning or raw.line())}", highlight=False, soft_wrap=True)


def _origin(console: Any, data: dict[str, Any]) -> None:
    """The model's own code (model.py) and where an imported MLflow model came from."""
    if data.get("own_code"):
        code = data["own_code"]
        console.print(
            f"[yellow]runs its own code:[/] {code['file']} sha256 {code['sha256']} (at register, load and serve; "
            "review it like preprocess.py: 'rollbackkit diff' shows its changes)",
            highlight=False,
            soft_wrap=True,
        )
    if data.get("source"):
        source = data["source"]
        run = f"run {source['run_id']}, " if source["run_id"] else ""
        console.print(
            f"from MLflow {source['uri']} ({run}MLflow {source['mlflow_version']}, flavor {source['flavor']})",
            highlight=False,
            soft_wrap=True,
        )


def _runtime(console: Any, data: dict[str, Any]) -> None:
    """The runtime at register, and what differs here (info findings left out)."""
    if data["runtime"]:
        libraries = ", ".join(f"{k} {v}" for k, v in data["runtime"]["libraries"].items())
        console.print(f"runtime at register: python {data['runtime']['python']}, {libraries}", highlight=False)
    for finding in data["runtime_here"]:
        if finding["severity"] != "info":
            console.print(f"[yellow]{finding['severity']}:[/] {finding['detail']}", highlight=False)


def _safety(console: Any, data: dict[str, Any]) -> None:
    """The skops types trusted at load, and a pickle model's warning."""
    if data["trusted_types"]:
        console.print(f"skops types trusted at load: {', '.join(data['trusted_types'])}")
    if data["trusted_by_operator"]:
        console.print(
            f"[yellow]trusted at register beyond the reviewed types:[/] {', '.join(data['trusted_by_operator'])}"
        )
    if data["unsafe_model_format"]:
        console.print(
            "[yellow]warning:[/] the model is a joblib/pickle file: loading it runs any code it holds "
            + (
                "(allowed with --unsafe at register; loaded only after its hash matches)."
                if data["unsafe_allowed"]
                else "(registered without --unsafe: it will not load)."
            )
        )


def _ignored(console: Any, data: dict[str, Any]) -> None:
    """The registration fields a newer rollbackkit wrote and this one dropped on reading (yellow)."""
    if data.get("ignored"):
        console.print(
            "[yellow]ignored (written by a newer rollbackkit; upgrade to read them):[/] "
            + escape(listed(data["ignored"])),
            highlight=False,
            soft_wrap=True,
        )
