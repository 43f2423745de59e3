"""Evaluation of students and teachers: metrics and map metrics, trivial baselines, `evaluate` of a checkpoint on a
pairs file, `evaluate-maps` against experimental complexes, and the ablation grid. Option records: `config`."""
