"""Stage two: the CNN student (model, losses, dataset over the cache reader, trainer, metrics, plots).

Never imports the teacher runner or fair-esm.
"""
