"""Find the server of an environment, read its ``/status`` and call its admin API (used by the CLI)."""

from __future__ import annotations

import json
import os
from typing import Any

from rollbackkit.errors import RollbackkitError
from rollbackkit.project import ProjectPaths
from rollbackkit.serving.server import address_file, admin_token


class ServerError(RollbackkitError):
    """No server runs for an environment, or it refused or did not answer a call."""


def find_server(paths: ProjectPaths, name: str, env: str) -> str | None:
    """URL of the running server for NAME/ENV (None if none is alive)."""
    record = address_file(paths, name, env)
    try:
        data = json.loads(record.read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return str(data["url"])


def status(url: str) -> dict[str, Any]:
    """The server's ``GET /status`` (what serves, canary, gates, log writer); ServerError when
    it does not answer with a JSON object."""
    import httpx

    try:
        data = httpx.get(f"{url.rstrip('/')}/status", timeout=30).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServerError(f"The server at {url} did not answer /status: {exc}.", "Check that it runs.") from exc
    if not isinstance(data, dict):
        raise ServerError(f"The server at {url} did not answer /status with an object.", "Check that it runs.")
    return data


def admin_call(paths: ProjectPaths, url: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an admin operation with the project's token; raise ServerError on refusal."""
    import httpx

    token = admin_token(paths)
    if token is None:
        raise ServerError("No admin token is available.", "Set ROLLBACKKIT_ADMIN_TOKEN to the server's token.")
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/admin/{operation}", json=body, timeout=120, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        raise ServerError(f"Cannot reach the server at {url}: {exc}.", "Check that it runs, or drop --server.") from exc
    data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise ServerError(
            f"The server refused {operation}: {data.get('error', response.text)}", str(data.get("hint", ""))
        )
    return data  # type: ignore[no-any-return]
