"""The filter diagnostics notebook runs under papermill on a real tape, with features on and off."""

from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_filter_diagnostics.ipynb"


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts.append(str(data.get("text/plain", "")) + str(output.get("text", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("features", ["default", "none"])
def test_filter_notebook_runs_on_the_binance_capture(tmp_path, shared_data, features):
    tape = shared_data / "binance-futures-hftbacktest/usdm/btcusdt_20240808.gz"
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"tape_path": str(tape), "tape_format": "binance-ws", "features": features},
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = _outputs_text(nb)
    # the out-of-sample table and the innovation summary are there, and the charts
    assert "mse_vhat" in text and "mse_mid" in text and "lag1_autocorrelation" in text
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])) >= 3
