"""Placement: filters (hard constraints) and weighers (preferences), Nova-style."""
