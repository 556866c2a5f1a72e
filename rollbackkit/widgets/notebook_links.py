"""Opening an executed runbook from a panel, under JupyterLab and under Voila alike.

An absolute file path in an ``href`` opens nothing in a browser. What works where:

- **In the panel, everywhere** (:func:`rendered_notebook`): the kernel renders the executed
  notebook to static HTML with nbconvert and the panel shows it in a sandboxed iframe. No
  server route is involved, so it works in JupyterLab, Notebook, VS Code and Voila, for a
  project inside or outside the server's root, and nothing is executed.
- **JupyterLab** (:func:`notebook_href`): ``{base_url}lab/tree/{path}`` opens the notebook in a
  JupyterLab tab (read-only file: opening never runs it), when it lies under the server's
  root. The kernel finds its server by its parent process: the server that started it
  (``jpserver-PID.json`` in Jupyter's runtime directory: ``root_dir``, ``base_url``).
- **Voila**: no link. ``/voila/render/{path}`` would execute the runbook again (a rollback!),
  and Voila's files handler serves only its ``file_allowlist`` (images by default), so the
  in-panel view is the way there. The kernel knows it runs under Voila by the
  ``SERVER_SOFTWARE=voila/...`` variable Voila sets.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

HostKind = Literal["lab", "voila", "none"]


@dataclass(frozen=True)
class JupyterHost:
    """Where the kernel runs: under a Jupyter server (``lab``: JupyterLab or Notebook 7), under
    Voila, or elsewhere (``none``: papermill, a script); the server's root and base URL."""

    kind: HostKind
    root: Path | None = None
    base_url: str = "/"


def jupyter_host(environ: dict[str, str] | None = None, parent: int | None = None) -> JupyterHost:
    """The host of this kernel (``environ``/``parent``: for tests; default this process's)."""
    env = os.environ if environ is None else environ
    if env.get("SERVER_SOFTWARE", "").startswith("voila/") or "VOILA_BASE_URL" in env:
        return JupyterHost("voila", None, env.get("VOILA_BASE_URL", "/"))
    server = _server_of(os.getppid() if parent is None else parent)
    if server is None:
        return JupyterHost("none")
    return JupyterHost("lab", Path(server.get("root_dir") or server.get("notebook_dir") or "/"), server["base_url"])


def _server_of(pid: int) -> dict[str, str] | None:
    """The Jupyter server with process id ``pid``, from its runtime file (None: not one)."""
    from jupyter_core.paths import jupyter_runtime_dir

    folder = Path(jupyter_runtime_dir())
    for file in (folder / f"jpserver-{pid}.json", folder / f"nbserver-{pid}.json"):
        try:
            info = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("pid") == pid:
            return {k: str(v) for k, v in info.items() if v is not None} | {
                "base_url": str(info.get("base_url") or "/")
            }
    return None


def notebook_href(path: Path, host: JupyterHost) -> str | None:
    """The URL that opens ``path`` in ``host`` (JupyterLab: ``{base_url}lab/tree/...``), or None
    where no URL opens it (Voila, no server, a notebook outside the server's root)."""
    if host.kind != "lab" or host.root is None:
        return None
    try:
        relative = path.resolve().relative_to(host.root.resolve())
    except (ValueError, OSError):
        return None
    return f"{host.base_url.rstrip('/')}/lab/tree/{quote(relative.as_posix())}"


def rendered_notebook(path: Path, height: int = 520) -> str:
    """An executed notebook as a sandboxed iframe of nbconvert's HTML (nothing runs in the kernel)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(str(path), as_version=4))
    return (
        f"<iframe class='rollbackkit-runbook-view' title='{html.escape(path.name)}' "
        f"sandbox='allow-scripts allow-popups' srcdoc=\"{html.escape(body, quote=True)}\" "
        f"style='width:100%;height:{height}px;border:1px solid #d0d7de;border-radius:4px'></iframe>"
    )
