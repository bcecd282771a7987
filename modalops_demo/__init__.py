"""The industrial-safety demo: a generated dataset, corruption injection and detection scoring.

It is one dataset among many: the core (`modalops`) never imports this package, and the demo
reaches the pipeline only through its dataset spec (`dataset.yaml`, written at the raw root).
"""
