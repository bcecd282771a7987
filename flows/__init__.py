"""Prefect flows: thin, one task call per stage."""
