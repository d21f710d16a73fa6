"""Anomaly detection on single series: a streaming, causal detector and NAB's scoring rules."""
