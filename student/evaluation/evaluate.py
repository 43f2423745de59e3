"""Evaluation of a trained student on a pairs file: classification metrics at the validation-picked threshold,
agreement of its maps with a teacher cache's maps, and trivial baselines beside it (`student.evaluation.baselines`)."""
from __future__ import annotations

import json
import logging
import numpy as np

from data.atomic import check_outputs, write_text_atomic
from data.device import resolve_device
from data.errors import UserError
from data.fasta import read_fasta
from data.keys import file_sha256
from data.pairs import Pair, read_pairs
from data.splits import split_by, stratified_subsample
from student.checkpoint import load_checkpoint
from student.config import EvaluateConfig, TrainConfig
from student.dataset import PairDataset, check_cache
from student.inference import evaluate_dataset
from student.predict import check_predictions
from teacher_cache import TeacherCache

log = logging.getLogger(__name__)


def default_part(part: str | None, has_column: bool) -> str:
    """The part `evaluate` scores: the one asked for; else the test part of a pairs file with a split column, else
    all pairs."""
    if part is not None:
        return part
    return "test" if has_column else "all"


def select_split(pairs: list[Pair], has_column: bool, part: str | None, train_config: TrainConfig,
                 path: str, run_split: dict, pairs_sha256: str | None) -> tuple[list[Pair], list[Pair] | None, str]:
    """(pairs to evaluate, the matching training pairs or None, how the split was found).

    part: train | valid | test | all; None: `default_part` (test when the pairs file has a split column)."""
    part = default_part(part, has_column)
    if part == "all" and not has_column:
        return pairs, None, "all pairs (no split)"
    if has_column:
        how = "the pairs file's split column"
        split = pairs
    else:
        method = run_split.get("method", train_config.split)
        if method not in ("random", "protein"):
            raise UserError(f"{path} has no split column and the training run took its split from a pairs file's "
                            "column: pass a pairs file with a split column")
        if pairs_sha256 is not None and pairs_sha256 != file_sha256(path):
            log.warning("%s differs from the pairs file of the training run: its split is redone with the run's "
                        "settings, so the parts may differ from the run's", path)
        split, _ = split_by(pairs, method, False, path, train_config.valid_frac, train_config.test_frac,
                            train_config.seed)
        how = f"the training run's {method} split, redone (seed {train_config.seed})"
    train = [p for p in split if p.split == "train"]
    if train_config.n_train is not None:
        train = stratified_subsample(train, train_config.n_train, train_config.seed)
    chosen = split if part == "all" else [p for p in split if p.split == part]
    if not chosen:
        raise UserError(f"{path} has no pairs in the {part!r} part: choose another with --split "
                        "(train, valid, test or all)")
    return chosen, train, how


def evaluate(config: EvaluateConfig) -> dict:
    """Metrics of the checkpoint on the (part of the) pairs file; see the module docstring."""
    check_outputs({"--json": config.json}, {"--checkpoint": config.checkpoint, "--pairs": config.pairs,
                                            "--fasta": config.fasta, "--cache": config.cache}, config.overwrite)
    device = resolve_device(config.device)
    model, checkpoint = load_checkpoint(config.checkpoint, device)
    train_config = TrainConfig.from_dict(checkpoint["train_config"])
    sequences = read_fasta(config.fasta)
    table = read_pairs(config.pairs, sequences, require_labels=True)
    pairs, train_pairs, how = select_split(table.pairs, table.has_split, config.split, train_config, config.pairs,
                                           checkpoint.get("split") or {}, checkpoint.get("pairs_sha256"))
    cache = None
    if config.cache:
        cache = TeacherCache.open(config.cache)
        check_cache(pairs, cache, need_embeddings=False)
    try:
        dataset = PairDataset(pairs, cache, train_config.map_target)
        metrics, probs = evaluate_dataset(model, dataset, config.batch_size, device, float(checkpoint["threshold"]),
                                          train_config.pos_weight, with_maps=cache is not None)
        check_predictions(probs, pairs, config.checkpoint)
    finally:
        if cache is not None:
            cache.close()
    labels = np.array([p.label for p in pairs])
    part = default_part(config.split, table.has_split)
    result = {"checkpoint": config.checkpoint, "pairs": config.pairs, "part": part,
              "split_source": how, "student": metrics, "chance_aupr": float(labels.mean()),
              "threshold": float(checkpoint["threshold"]), "head": train_config.model.head,
              "teacher_fingerprint": train_config.teacher_fingerprint,
              "teacher_random_weights": train_config.teacher_random_weights}
    if cache is not None:
        result["map_teacher"] = {"cache": config.cache, "fingerprint": cache.fingerprint,
                                 "random_weights": cache.random_weights, "map_target": train_config.map_target,
                                 "same_as_training": cache.fingerprint == train_config.teacher_fingerprint}
    if config.baselines:
        if train_pairs is None:
            raise UserError("--baselines needs the training part: use a pairs file with a split column or --split")
        from student.evaluation.baselines import evaluate_baselines  # scikit-learn, imported only when asked

        result["baselines"] = evaluate_baselines(train_pairs, pairs)
        result["baseline_train_pairs"] = len(train_pairs)
    if config.json:
        write_text_atomic(config.json, json.dumps(result, indent=2) + "\n")
    return result
