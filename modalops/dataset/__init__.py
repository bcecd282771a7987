"""The user's dataset: its spec (dataset.yaml), table contracts, and the raw-layout readers."""
