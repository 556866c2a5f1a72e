"""RunbookPanel: pick a template, fill its declared parameters, run it with a progress bar."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from rollbackkit.widgets._common import RegistryLike, badge, error_html, registry_of


class RunbookPanel(widgets.VBox):
    """Runs a runbook template through :func:`rollbackkit.ops.runbooks.run`.

    Parameter widgets are generated from the template's ``parameters`` cell (text, number
    or checkbox by the declared type) and validated before the run starts.

    Args:
        registry: A registry or a project path.
        name: Prefills the ``name`` parameter.
        env: Prefills the ``env`` parameter.
        template: The template selected first.
    """

    def __init__(
        self, registry: RegistryLike = ".", name: str = "", env: str = "prod", template: str = "rollback"
    ) -> None:
        from rollbackkit.ops.runbook_templates import templates

        self.registry = registry_of(registry)
        self.defaults = {"repo": str(self.registry.root), "name": name, "env": env}
        names = list(templates())
        self.template = widgets.Dropdown(options=names, value=template if template in names else names[0])
        self.template.description = "runbook"
        self.fields = widgets.VBox()
        self.run_button = widgets.Button(description="Run runbook", button_style="danger", icon="play")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="cells")
        self.result = widgets.HTML()
        self.last: Any = None
        self.template.observe(lambda _: self._build_fields(), names="value")
        self.run_button.on_click(lambda _: self.run())
        super().__init__([self.template, self.fields, widgets.HBox([self.run_button, self.progress]), self.result])
        self.add_class("rollbackkit-runbook")
        self._build_fields()

    def _build_fields(self) -> None:
        from rollbackkit.ops.runbook_templates import declared_parameters, templates

        self._declared = declared_parameters(templates()[self.template.value])
        controls = []
        for param in self._declared.values():
            value = self.defaults.get(param.name, param.default)
            if param.type == "bool":
                control: widgets.Widget = widgets.Checkbox(value=bool(value), description=param.name)
            elif param.type == "int":
                control = widgets.IntText(value=int(value), description=param.name)
            elif param.type == "float":
                control = widgets.FloatText(value=float(value), description=param.name)
            else:
                control = widgets.Text(value=str(value), description=param.name, placeholder=param.help)
            control.layout.width = "460px"
            control.add_class(f"rollbackkit-param-{param.name}")
            controls.append(control)
        self.fields.children = controls

    @property
    def parameters(self) -> dict[str, Any]:
        """The values in the parameter widgets."""
        return {control.description: control.value for control in self.fields.children}

    def set(self, **values: Any) -> None:
        """Fill parameter widgets by name (unknown names are ignored; a bad value shows in the panel)."""
        for control in self.fields.children:
            if control.description in values:
                try:
                    control.value = values[control.description]
                except Exception as exc:  # a widget refusing a value of the wrong type
                    self.result.value = error_html(exc)

    def run(self) -> Any:
        """Validate and execute; show the verdict and the saved notebook. Returns the result."""
        from rollbackkit.ops.runbooks import run

        self.run_button.disabled = True
        self.progress.value, self.result.value = 0, "Running&hellip;"

        def step(i: int, n: int, line: str) -> None:
            self.progress.max, self.progress.value = n, i

        try:
            self.last = run(self.template.value, self.parameters, repo=self.registry.root, progress=step)
        except Exception as exc:  # shown in the panel, never as a traceback
            self.result.value = error_html(exc)
            return None
        finally:
            self.run_button.disabled = False
        self.progress.value = self.progress.max
        result = self.last
        error = f"<div>{html.escape(result.error)}</div>" if result.error else ""
        self.result.value = (
            f"<div class='rollbackkit-verdict'>{badge(result.status)} verdict: "
            f"<b class='rollbackkit-verdict-value'>{html.escape(result.verdict)}</b></div>{error}"
            f"<div>Saved: <a class='rollbackkit-notebook' href='{html.escape(str(result.notebook))}' "
            f"target='_blank'>{html.escape(result.notebook.name)}</a> (sha256 {result.sha256[:12]}&hellip;)</div>"
        )
        return result
