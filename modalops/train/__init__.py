"""Train stage: spec-driven inputs, the DataModule, the fusion model, fit, DDP worker, balancing.

Nothing heavy is imported here: `modalops.train.inputs` and `modalops.train.models` are what the
served model needs, and Lightning is imported only by the modules that train.
"""

FUSED_ID = "fused"  # model id of the fused model; baselines are named after their stream
