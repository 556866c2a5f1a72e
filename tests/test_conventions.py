"""Conventions of the whole CLI (issue 17, point 5): -C before the command as git takes it,
typos that list the known names, --json on every command that prints data, NO_COLOR, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

from rollbackkit.cli import app

from .conftest import run_cli
from .terminal import screen

README = Path(__file__).parent.parent / "README.md"


def test_minus_C_works_before_the_command_as_git_takes_it(served: Path, tmp_path: Path) -> None:
    inside = json.loads(run_cli("history", "churn", "--env", "prod", "--json", cwd=served).stdout)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for flag in ("-C", "--repo"):
        before = run_cli(flag, str(served), "history", "churn", "--env", "prod", "--json", cwd=elsewhere)
        assert before.returncode == 0, before.stderr
        assert json.loads(before.stdout) == inside
    after = run_cli("history", "churn", "--env", "prod", "--json", "-C", str(served), cwd=elsewhere)
    assert json.loads(after.stdout) == inside, after.stderr
    # As with git, a later relative -C is taken from the first one's directory.
    both = run_cli(
        "-C", str(served.parent), "history", "churn", "--env", "prod", "--json", "-C", served.name, cwd=elsewhere
    )
    assert json.loads(both.stdout) == inside, both.stderr
    missing = run_cli("-C", str(tmp_path / "nowhere"), "history", "churn", "--env", "prod", cwd=elsewhere)
    assert missing.returncode == 2 and "does not exist" in missing.stderr, missing.stderr
    assert missing.stderr.splitlines() == [  # one line, not a usage block
        f"error: -C {tmp_path / 'nowhere'} does not exist. Pass a folder inside the project, as with git -C."
    ], missing.stderr


def test_unknown_names_and_environments_are_errors_that_list_the_known_ones(served: Path) -> None:
    for command in (
        ("history", "churn", "--env", "prdo"),
        ("status", "churn", "--env", "prdo"),
        ("affected", "churn", "--env", "prdo", "--version", "v1.1.0"),
        ("backfill", "churn", "--env", "prdo", "--version", "v1.1.0"),
        ("promote", "churn", "--env", "prdo"),
        ("rollback", "churn", "--env", "prdo", "--reason", "typo"),
        ("rollback", "churn", "--env", "prdo", "--dry-run", "--reason", "typo"),
        ("gates", "check", "churn@v1.1.0", "--env", "prdo"),
    ):
        shown = screen(*command, cwd=served)
        assert shown.returncode == 1 and shown.stdout == "", shown
        assert shown.stderr.splitlines() == ["error: churn was never deployed to 'prdo'. Known environments: prod."], (
            shown
        )
    for command in (("history", "nosuch", "--env", "prod"), ("status", "nosuch", "--env", "prod"), ("list", "nosuch")):
        shown = screen(*command, cwd=served)
        assert shown.returncode == 1 and shown.stdout == "", shown
        assert shown.stderr.splitlines() == ["error: No bundle named 'nosuch' is registered. Known bundles: churn."]


def test_the_python_api_refuses_unknown_names_and_environments_like_the_cli(served: Path) -> None:
    import pytest

    import rollbackkit as rk
    from rollbackkit.errors import VersionNotFound

    calls = (
        lambda: rk.affected(served, "churn", "prdo", "v1.0.0"),
        lambda: rk.backfill(served, "churn", "prdo", "v1.0.0"),
        lambda: rk.situation(served, "churn", "prdo"),
        lambda: rk.gate_status(served, "churn", "prdo"),
        lambda: rk.check_gates(served, "churn@v1.0.0", env="prdo"),
        lambda: rk.promote(served, "churn", "prdo"),
        lambda: rk.rollback(served, "churn", "prdo", reason="typo"),
    )
    for call in calls:
        with pytest.raises(VersionNotFound) as refused:
            call()
        assert str(refused.value).splitlines() == ["churn was never deployed to 'prdo'. Known environments: prod."]
    with pytest.raises(VersionNotFound, match="Known bundles: churn"):
        rk.affected(served, "nosuch", "prod", "v1.0.0")


def test_no_color_is_respected_on_stdout_and_on_a_terminal_stderr(served: Path) -> None:
    failed = screen("history", "churn", "--env", "prdo", cwd=served, stderr_tty=True)
    assert failed.returncode == 1 and failed.no_color(), repr(failed.raw_stderr)
    coloured = screen("history", "churn", "--env", "prdo", cwd=served, stderr_tty=True, color=True)
    assert not coloured.no_color(), repr(coloured.raw_stderr)  # the terminal gets colour unless NO_COLOR
    for command in (("history", "churn", "--env", "prod"), ("list",), ("--help",)):
        shown = screen(*command, cwd=served, stderr_tty=True)
        assert shown.returncode == 0 and shown.no_color(), command


def test_every_command_that_prints_data_has_json() -> None:
    from rollbackkit.cli_reference import _commands

    long_running = {"rollbackkit serve", "rollbackkit demo"}  # a server's log; the demo's story
    lacking = [
        path
        for path, command in _commands(typer.main.get_command(app), "rollbackkit")
        if path not in long_running and not any("--json" in p.opts for p in command.params)
    ]
    assert lacking == []


def test_exit_codes_are_documented_in_help_and_readme(tmp_path: Path) -> None:
    shown = screen("--help", cwd=tmp_path, lines=200)
    assert shown.fits() and "Exit codes: 0 done; 1 failed" in " ".join(shown.stdout.split()), shown
    assert "-C DIR" in shown.stdout and "NO_COLOR" in shown.stdout, shown
    readme = README.read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in section, section


def _flavor_files() -> list[tuple[str, str, list[str]]]:
    """Each flavor of the registry: its name, its label and the file suffixes it reads."""
    from rollbackkit.bundle import flavors

    return [(name, flavors.get(name).label, list(flavors.get(name).formats)) for name in flavors.names()]


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", text) is not None


def test_register_help_and_docstring_name_every_flavor_and_suffix() -> None:
    from rollbackkit.registry.store import Registry

    register = typer.main.get_command(app).commands["register"]  # type: ignore[attr-defined]
    shown = " ".join(getattr(param, "help", None) or "" for param in register.params)  # what --help prints
    docstring = Registry.register.__doc__ or ""
    for name, _, suffixes in _flavor_files():
        assert _mentions(shown, name), (name, shown)
        for suffix in suffixes:
            assert _mentions(shown, suffix), (suffix, shown)
            assert _mentions(docstring, suffix), (suffix, "Registry.register's docstring")


def test_the_readme_model_flavors_table_lists_every_flavor_and_suffix() -> None:
    section = README.read_text().split("## Model flavors", 1)[1].split("\n#", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    for _, label, suffixes in _flavor_files():
        row = next((cells for cells in rows if cells[0].strip().startswith(label)), None)
        assert row is not None, (label, "has no row in README's Model flavors table")
        for suffix in suffixes:
            assert f"`{suffix}`" in row[2], (label, suffix, row[2])


def test_hints_name_every_safe_flavor() -> None:
    from rollbackkit.bundle import flavors
    from rollbackkit.errors import RollbackkitError

    with pytest.raises(RollbackkitError) as refused:
        flavors.for_object(object())
    for label in ("scikit-learn", "XGBoost", "LightGBM", "CatBoost", "ONNX"):
        assert label in refused.value.hint, refused.value.hint
    pickled = flavors.get("pickle")
    with pytest.raises(RollbackkitError) as unsafe:
        pickled.accept_file(Path("m.pkl"), "pickle", "m.pkl", (), unsafe=False)
    for name, label, suffixes in _flavor_files():
        if flavors.get(name).safe:
            assert f"{label} {'/'.join(suffixes)}" in unsafe.value.hint, (label, unsafe.value.hint)
