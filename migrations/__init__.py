"""Alembic migrations of the per-instance DryPipe database (installed as `drypipe_migrations`)."""
