"""Stage two: the CNN student (model, losses, dataset over the cache reader, trainer, checkpoints, batched
inference, `predict`, plots), with `screening/` and `evaluation/` as its subpackages.

Never imports the teacher runner or fair-esm.
"""
