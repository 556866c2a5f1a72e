"""Opening an executed runbook from a panel, under JupyterLab and under Voila alike.

An absolute file path in an ``href`` opens nothing in a browser. What works where:

- **In the panel, everywhere** (:func:`rendered_notebook`): the kernel renders the executed
  notebook to static HTML with nbconvert and the panel shows it in a sandboxed iframe. No
  server route is involved, so it works in JupyterLab, Notebook, VS Code and Voila, for a
  project inside or outside the server's root, and nothing is executed.
- **JupyterLab** (:func:`notebook_href`): ``{base_url}lab/tree/{path}`` opens the notebook in a
  JupyterLab tab (read-only file: opening never runs it), when it lies under the server's
  root. The kernel finds the server that started it by ``JPY_PARENT_PID`` (or, when unset,
  its parent process): ``jpserver-PID.json`` in Jupyter's runtime directory gives its
  ``root_dir`` and ``base_url``.
- **Voila**: no link. ``/voila/render/{path}`` would execute the runbook again (a rollback!),
  and Voila's files handler serves only its ``file_allowlist`` (images by default), so the
  in-panel view is the way there. The kernel knows it runs under Voila by the
  ``SERVER_SOFTWARE=voila/...`` variable Voila sets.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
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


def jupyter_host(environ: Mapping[str, str] | None = None, parent: int | None = None) -> JupyterHost:
    """The host of this kernel (``environ``/``parent``: for tests; default this process's)."""
    env = os.environ if environ is None else environ
    if env.get("SERVER_SOFTWARE", "").startswith("voila/") or "VOILA_BASE_URL" in env:
        return JupyterHost("voila", None, env.get("VOILA_BASE_URL", "/"))
    server = _server_of(_parent_pid(env) if parent is None else parent)
    if server is None:
        return JupyterHost("none")
    return JupyterHost("lab", Path(server.get("root_dir") or server.get("notebook_dir") or "/"), server["base_url"])


def _parent_pid(env: Mapping[str, str]) -> int:
    """The Jupyter server's process id: ``JPY_PARENT_PID`` (jupyter_client sets it when it starts a
    kernel, so a kernelspec started through conda run, uv, pixi or a shell script still finds its
    server), else this process's parent."""
    given = env.get("JPY_PARENT_PID", "")
    return int(given) if given.isdigit() else os.getppid()


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


RUNBOOK_CSS = """
:root { color-scheme: light dark; }
body { margin: 8px 12px; font: 13px/1.45 system-ui, sans-serif; background: Canvas; color: CanvasText; }
pre, code { font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; }
pre { margin: 0; padding: 6px 8px; overflow-x: auto; white-space: pre-wrap; }
.jp-InputArea pre, .input_area pre, .highlight { background: rgba(127,127,127,0.12); border-radius: 4px; }
.jp-Cell, .cell { margin: 0 0 10px; }
.jp-InputPrompt, .jp-OutputPrompt, .prompt { display: none; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid rgba(127,127,127,0.35); padding: 2px 6px; text-align: left; }
.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"] pre { background: rgba(207,34,46,0.15); }
img { max-width: 100%; }
"""
"""Inline style of a rendered runbook: the browser's own light or dark pair (Canvas, CanvasText)
and translucent tints, so it reads in either theme; no stylesheet or script is fetched."""


def rendered_notebook(path: Path, height: int = 520) -> str:
    """An executed notebook as a sandboxed iframe of nbconvert's HTML (nothing runs in the kernel).

    nbconvert's ``basic`` template (no require.js, MathJax or CDN: works air-gapped, ~8x smaller
    than ``lab``) with :data:`RUNBOOK_CSS`; ``sandbox=""``: nothing in it runs in the browser either.
    """
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nbformat.read(str(path), as_version=4))
    head = f"<meta charset='utf-8'><style>{RUNBOOK_CSS}</style>"
    page = f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"
    return (
        f"<iframe class='rollbackkit-runbook-view' title='{html.escape(path.name)}' "
        f"sandbox='' srcdoc=\"{html.escape(page, quote=True)}\" "
        f"style='width:100%;height:{height}px;border:1px solid rgba(127,127,127,0.4);border-radius:4px'></iframe>"
    )
