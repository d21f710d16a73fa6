"""Corral's database: SQLAlchemy 2 models, Alembic migrations, repositories."""
