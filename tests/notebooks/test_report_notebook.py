"""The backtest report notebook runs under papermill with parameters and renders to HTML."""

import json
from pathlib import Path

import nbformat

from mmlab.cli import main

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_notebooks_are_thin_templates_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not any(c.outputs for c in code), f"{path.name} is committed with outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
        assert all(len(c.source.splitlines()) <= 30 for c in code), f"{path.name} has a cell over 30 lines"


def test_report_renders_a_backtest_run(tmp_path):
    synth_dir, run_dir, out_dir = tmp_path / "synth", tmp_path / "run", tmp_path / "report"
    assert main(["synth", "--minutes", "2", "--seed", "5", "--out", str(synth_dir)]) == 0
    assert main(["backtest", "--tape", str(synth_dir / "tape.parquet"), "--out", str(run_dir)]) == 0
    assert main(["report", "--run", str(run_dir), "--out", str(out_dir)]) == 0
    html = (out_dir / "00_backtest_report.html").read_text()
    executed = nbformat.read(out_dir / "00_backtest_report.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # the injected parameters point at this run, and its PnL appears in the summary table
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and str(run_dir.resolve()) in injected[0].source
    summary = json.loads((run_dir / "summary.json").read_text())["summary"]
    assert f"{summary['pnl_usd']:,.4f}" in html
    assert "plotly" in html.lower()
