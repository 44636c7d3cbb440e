"""Alembic migrations, packaged with `exchange` so an installed broker can migrate itself."""
