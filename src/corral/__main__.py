"""``python -m corral`` runs the CLI."""

from corral.cli.main import run

run()
