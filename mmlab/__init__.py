"""mmlab: a Jupyter-first research workbench for market making on Hyperliquid perpetuals."""

__version__ = "0.1.0"
