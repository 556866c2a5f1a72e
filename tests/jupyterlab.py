"""JupyterLab itself on 127.0.0.1, for the browser test that runs notebooks/explore.ipynb in it.

`lab(repo, root)` starts ``jupyter lab`` (the venv's JupyterLab 4.6.6) with a random token on a free
loopback port, serving ``root`` (a temp copy of notebooks/), with ``ROLLBACKKIT_REPO`` set to
``repo``. Its config, settings and workspaces live in ``root``'s parent, never in HOME: no news feed,
no update check, a read-only extension manager (no PyPI listing), notebooks rendered whole (no
windowing: every cell stays in the page for the checks and the screenshots). Stopped on exit.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .servers import stop

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"

SERVER_CONFIG = {
    "ServerApp": {
        "ip": "127.0.0.1",
        "port_retries": 0,
        "open_browser": False,
        "allow_root": True,  # containers and CI run as root; the server listens on loopback only
        "terminals_enabled": False,
    },
    "LabApp": {
        "news_url": None,  # None (not ""): the news handler never fetches
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
    "LanguageServerManager": {"autodetect": False},
}
"""What the server is told besides its port, token and directories."""

USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/apputils-extension/themes": {"adaptive-theme": False, "theme": "JupyterLab Light"},
}
"""The settings a fresh user would have, minus the prompts and the network."""


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: where it listens, its token, the directory it serves, its log."""

    url: str
    token: str
    root: Path
    log: Path

    def open(self, path: str) -> str:
        """The address of ``path`` (e.g. ``lab/tree/explore.ipynb``), logged in with the token."""
        separator = "&" if "?" in path else "?"
        return f"{self.url}/{path}{separator}token={self.token}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(directory: Path) -> None:
    for plugin, values in USER_SETTINGS.items():
        path = directory / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextmanager
def lab(repo: Path, base: Path, env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[Lab]:
    """JupyterLab serving a copy of notebooks/ (``base/notebooks``) on ``repo``; stopped on exit."""
    root = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root, symlinks=True)  # a copy: the run never writes next to the source
    config, settings, workspaces = base / "jupyter-config", base / "lab-settings", base / "lab-workspaces"
    config.mkdir()
    workspaces.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    _settings(settings)
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "jupyterlab.log"
    environment = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "ROLLBACKKIT_REPO": str(repo),
        "OMP_NUM_THREADS": "1",
        **(env or {}),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--ServerApp.port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={workspaces}",
            ],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, f"{url}/api/status?token={token}", log, timeout)
        yield Lab(url, token, root, log)
    finally:
        _shut_down(process, url, token)


def _shut_down(process: subprocess.Popen[bytes], url: str, token: str) -> None:
    """Ask the server to stop (it shuts its kernels down first), then make sure it did."""
    if process.poll() is None:
        try:
            httpx.post(f"{url}/api/shutdown", headers={"Authorization": f"token {token}"}, timeout=10)
            process.wait(timeout=15)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            pass
    stop(process)  # type: ignore[arg-type]


def _wait_until_up(process: subprocess.Popen[bytes], status: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(status, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"jupyter lab did not start in {timeout:.0f} s:\n{log.read_text()}")
