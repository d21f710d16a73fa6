"""Capacity forecast (trend + seasonality), time to exhaustion and what-if scenarios."""
