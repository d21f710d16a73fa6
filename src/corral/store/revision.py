"""The newest schema revision, known without importing SQLAlchemy or Alembic.

Migration files are named ``<revision>_<what>.py`` (a test checks the newest against
Alembic's own head), so a reader that only needs to know whether a database is current
(the quick VM listing) can ask here.
"""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
