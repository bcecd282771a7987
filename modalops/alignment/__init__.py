"""Alignment engine internals: sync-cue envelopes, clock estimation, windowing and the report."""
