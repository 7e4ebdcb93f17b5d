"""Reports: execute notebook templates with papermill and render them to HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["render_notebook", "use_offline_plotly"]


def render_notebook(template: Path, out_dir: Path, *, parameters: dict[str, Any], kernel_name: str = "python3") -> Path:
    """Run ``template`` with ``parameters`` into ``out_dir`` and return the HTML file's path.

    The executed notebook is written beside the HTML with the same stem. Code cells are hidden
    in the HTML only when the notebook asks for it; the default keeps them, so a reader sees what
    produced each chart.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    if not template.exists():
        raise FileNotFoundError(f"{template}: notebook template not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / template.name
    papermill.execute_notebook(
        str(template), str(executed), parameters=parameters, kernel_name=kernel_name, progress_bar=False
    )
    notebook = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def use_offline_plotly() -> None:
    """Make plotly figures show in JupyterLab and survive export to a self-contained HTML file."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"
