"""Shared test settings: property tests draw the same examples on every run; real data's path."""

from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("mmlab", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("mmlab")


#: real recordings live beside the repository, never inside it
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real market recordings (../shared/data); its absence is an error, not a skip."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(f"{SHARED_DATA}: the real recordings must sit beside the repository")
    return SHARED_DATA
