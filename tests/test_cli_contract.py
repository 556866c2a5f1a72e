"""The CLI's contract: help on everything, exit codes, one-line errors, JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rollbackkit.cli import app

from .conftest import run_cli


def test_every_command_and_option_has_help_text() -> None:
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert {"init", "register", "list", "show", "resolve", "restore", "verify", "recover"} <= set(commands)
    missing = []
    for name, command in commands.items():
        if not (command.help or "").strip():
            missing.append(name)
        for param in command.params:
            if param.param_type_name == "option" and not (param.help or "").strip():
                missing.append(f"{name} {param.opts[0]}")
    assert missing == []


def test_usage_errors_exit_2_domain_errors_exit_1_with_one_line(two_versions: Path) -> None:
    usage = run_cli("verify", cwd=two_versions)
    assert usage.returncode == 2
    missing = run_cli("show", "cancer@v9.9.9", cwd=two_versions)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        "error: cancer@v9.9.9 is not registered. Run 'rollbackkit list NAME' to see its versions."
    ]


def test_json_shapes_of_list_show_resolve_verify(two_versions: Path) -> None:
    listed = json.loads(run_cli("list", "cancer", "--json", cwd=two_versions).stdout)
    assert set(listed) == {"bundles"}
    assert all(set(b) == {"name", "version", "bundle_id", "created", "commit"} for b in listed["bundles"])
    shown = json.loads(run_cli("show", "cancer@v1.1.0", "--json", cwd=two_versions).stdout)
    assert {"name", "version", "bundle_id", "commit", "created", "components", "schema"} <= set(shown)
    assert all({"path", "md5", "size"} <= set(c) for c in shown["components"].values())
    resolved = json.loads(run_cli("resolve", "cancer@v1.0.0", "--json", cwd=two_versions).stdout)
    assert resolved["tag"] == "cancer@v1.0.0"
    verified = json.loads(run_cli("verify", "cancer@v1.0.0", "--json", cwd=two_versions).stdout)
    assert set(verified) == {"ok", "checked", "problems"}


def test_every_nested_command_and_option_has_help_text() -> None:
    from rollbackkit.cli_reference import _commands

    missing = []
    for path, command in _commands(typer.main.get_command(app), "rollbackkit"):
        if not (command.help or "").strip():
            missing.append(path)
        missing += [f"{path} {p.opts[0]}" for p in command.params if p.param_type_name == "option" and not p.help]
    assert missing == []


def test_the_readme_cli_reference_matches_the_cli(tmp_path: Path) -> None:
    from rollbackkit.cli_reference import END, START, render

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert readme.split(START)[1].split(END)[0].strip() == render()
    listed = run_cli("--help", cwd=tmp_path, env={"COLUMNS": "200"}).stdout
    rows = [line.split() for line in listed.splitlines() if line.startswith("│ ") and len(line.split()) > 2]
    commands = {row[1] for row in rows if not row[1].startswith("-")}
    assert {"register", "rollback", "runbook", "audit", "demo"} <= commands
    assert all(f"`rollbackkit {name}" in readme for name in commands)
