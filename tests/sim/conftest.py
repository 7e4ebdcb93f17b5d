"""Real tapes shared by the simulator tests, imported once per session."""

from __future__ import annotations

import pytest

from mmlab.data.importers import import_file


@pytest.fixture(scope="session")
def binance_btcusdt(shared_data):
    """The Binance USD-M BTCUSDT raw capture: 93,954 messages, 466,576 rows, 5.75 minutes."""
    path = shared_data / "binance-futures-hftbacktest" / "usdm" / "btcusdt_20240808.gz"
    return import_file(path, "binance-ws").tape


@pytest.fixture(scope="session")
def hyperliquid_btc(shared_data):
    """The Hyperliquid collector's BTC tape: l2Book snapshots (a BOOK_CLEAR each) and trades."""
    path = shared_data / "hyperliquid-ws-collector-csv" / "HL_data"
    return import_file(path, "hyperliquid-collector-csv", coin="BTC").tape
