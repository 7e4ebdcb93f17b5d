"""Shared test settings: property tests draw the same examples on every run."""

from hypothesis import settings

settings.register_profile("mmlab", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("mmlab")
