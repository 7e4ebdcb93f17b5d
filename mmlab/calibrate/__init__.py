"""Calibrations: fit a model's parameters from a tape and return a results object."""
