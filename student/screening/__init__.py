"""Screening whole proteomes with a trained student: the plan of length-sorted blocks (`plan`), per-protein features
(`store`), the block scorer equal to `StudentModel.classify` (`score`), top-K bookkeeping and outputs (`results`),
and the resumable, shardable run (`screen`). Options: `config.ScreenConfig`."""
