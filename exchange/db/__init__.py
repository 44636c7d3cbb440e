"""Persistence: one declarative base, engines and the unit of work, column types, models."""
