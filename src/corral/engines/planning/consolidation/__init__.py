"""Consolidation, rebalancing, evacuation and migration ordering."""
