"""Data builders and service fixtures shared by tests and benchmarks (never imported by stages)."""
