"""Corral's REST API (FastAPI): thin routes over the services."""
