"""Corral's command-line interface (Typer + Rich)."""
