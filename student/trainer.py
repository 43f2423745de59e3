"""Training the student: data and splits, derived settings, the epoch loop (AdamW, warm-up + cosine, gradient
clipping, early stopping on validation AUPR), checkpoints and --resume, and the final evaluation.

`train(config)` writes into `config.out`:
    best.pt       weights of the best validation epoch, resolved config, threshold, metrics (plain dict)
    last.pt       the latest epoch with optimizer, scheduler, RNG and trainer state, for --resume
    metrics.json  valid and test metrics of best.pt, split statistics, timings
    history.csv   one row per epoch
    config.json   the resolved TrainConfig
Randomness: model initialisation and dropout come from torch's generator (seeded, saved in last.pt); batch
order and crops are drawn from (seed, epoch), so a resumed run repeats the uninterrupted one.
Unlabelled pairs (`unlabelled_pairs`, see `unlabelled_part`) join the training part's batches; the map and
semantic terms read them, and cross-entropy reads each batch's labelled pairs only: their sum over the batch
size (`ce_norm` "batch", the default) or their mean ("labelled", so with few labelled pairs per batch each of them
weighs more per step than in a run without unlabelled pairs); docs/results.md, section 2, "CE over the whole batch,
and a map-first curriculum", says what each did. A map-first curriculum (`map_first_epochs`) trains the teacher
terms alone for its first epochs: cross-entropy is weighted 0 there, and those epochs are neither a best epoch nor
a bad one for early stopping.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from data.atomic import atomic_path, check_outputs, write_text_atomic
from data.device import autocast_for, resolve_device, to_device
from data.errors import UserError
from data.fasta import read_fasta
from data.lock import FileLock
from data.keys import file_sha256
from data.pairs import Pair, read_pairs
from data.splits import split_by, stratified_subsample
from student.checkpoint import read_checkpoint, save_checkpoint
from student.config import RESUME_FREE_KEYS, TrainConfig
from student.dataset import LengthBucketSampler, PairDataset, batch_sizes, check_cache, collate_pairs
from student.losses import total_loss
from student.evaluation.metrics import pick_threshold
from student.model import StudentModel, log_odds
from student.inference import evaluate_dataset
from teacher_cache import TeacherCache

log = logging.getLogger(__name__)

RUN_FILES = ("best.pt", "last.pt", "metrics.json", "history.csv", "config.json")
HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_ce", "train_map", "train_sem", "valid_loss", "valid_aupr",
                  "valid_auroc", "best", "seconds")


@dataclass
class RunData:
    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]
    cache: TeacherCache | None
    split: dict = field(default_factory=dict)
    pairs_sha256: str = ""
    unlabelled: list[Pair] = field(default_factory=list)  # map and semantic terms only (label None)


# -- data ---------------------------------------------------------------------------------------------------------
def load_run_data(config: TrainConfig) -> RunData:
    """Read FASTA and pairs, split them, subsample the training part, open and check the cache."""
    sequences = read_fasta(config.fasta)
    table = read_pairs(config.pairs, sequences, require_labels=True)
    pairs, stats = split_by(table.pairs, config.split, table.has_split, config.pairs, config.valid_frac,
                            config.test_frac, config.seed)
    parts = {name: [p for p in pairs if p.split == name] for name in ("train", "valid", "test")}
    if config.n_train is not None:
        parts["train"] = stratified_subsample(parts["train"], config.n_train, config.seed)
        stats["n_train"] = len(parts["train"])
    train_labels = [p.label for p in parts["train"]]
    if not parts["train"] or sum(train_labels) == 0 or sum(train_labels) == len(train_labels):
        raise UserError(f"the training part of {config.pairs} needs positives and negatives "
                        f"({len(train_labels)} pairs, {sum(train_labels)} positive)")
    if not parts["valid"]:
        raise UserError(f"the validation part of {config.pairs} is empty (early stopping and the threshold need "
                        "it): use --valid-frac > 0 or a split column with `valid` rows")
    valid_labels = [p.label for p in parts["valid"]]
    if sum(valid_labels) in (0, len(valid_labels)):
        raise UserError(f"the validation part of {config.pairs} has {len(valid_labels)} pairs, {sum(valid_labels)} "
                        "positive: it needs positives and negatives (early stopping on validation AUPR and the "
                        "decision threshold are computed on it); use a larger --valid-frac, another --seed, or a "
                        "split column with both classes among the `valid` rows")
    unlabelled: list[Pair] = []
    if config.unlabelled_pairs:
        if not config.cache:
            raise UserError(f"--unlabelled-pairs {config.unlabelled_pairs} needs a teacher cache (--cache): "
                            "unlabelled pairs teach only through the teacher's maps and embeddings")
        if config.map_pairs == "positives":
            raise UserError(f"--unlabelled-pairs {config.unlabelled_pairs} with --map-pairs positives: the map loss "
                            "would read labels the unlabelled pairs do not have; use --map-pairs all")
        unlabelled, stats["unlabelled"] = unlabelled_part(config.unlabelled_pairs, sequences, parts)
    cache = None
    if config.cache:
        cache = TeacherCache.open(config.cache)
        check_cache(parts["train"] + parts["valid"] + parts["test"] + unlabelled, cache,
                    need_embeddings=config.beta_sem > 0)
    return RunData(parts["train"], parts["valid"], parts["test"], cache, stats, file_sha256(config.pairs),
                   unlabelled)


def unlabelled_part(path: str, sequences: dict[str, str], parts: dict[str, list[Pair]]) -> tuple[list[Pair], dict]:
    """The pairs of `path` that may train the map and semantic terms, with their labels removed, and counts.

    Left out (and logged): a pair that is also a labelled pair of any part (in training it has its label; in
    validation or test its map would be trained on), and a pair with a protein of the validation or test part
    (the student would learn the held-out protein's interface from its teacher map: a leak).
    """
    table = read_pairs(path, sequences)
    labelled = {p.key for part in parts.values() for p in part}
    held_out = {seq for name in ("valid", "test") for p in parts[name] for seq in (p.seq_a, p.seq_b)}
    kept, as_labelled, leaking = [], 0, 0
    for pair in table.pairs:
        if pair.key in labelled:
            as_labelled += 1
        elif pair.seq_a in held_out or pair.seq_b in held_out:
            leaking += 1
        else:
            kept.append(replace(pair, label=None, split="train"))
    if any(p.label is not None for p in table.pairs):
        log.info("%s: its label column is not read (unlabelled pairs train the map and semantic terms only)", path)
    if as_labelled:
        log.info("%s: left out %d pair(s) that are also labelled pairs", path, as_labelled)
    if leaking:
        log.warning("%s: left out %d pair(s) with a protein of the validation or test part (training on their teacher "
                    "maps would leak the held-out proteins)", path, leaking)
    if not kept:
        log.warning("%s: no unlabelled pair is left to train on", path)
    return kept, {"given": len(table.pairs), "used": len(kept), "left_out_labelled": as_labelled,
                  "left_out_held_out_protein": leaking}


# Below this many guaranteed epochs a run with a map term is warned about (docs/results.md, section 2: "train's
# 6-epoch default cuts the map term short").
SHORT_MAP_SCHEDULE = 10


def resolve_config(config: TrainConfig, data: RunData) -> TrainConfig:
    """Write the values derived from the data back into a copy of the config."""
    labels = np.array([p.label for p in data.train])
    config = replace(config, model=replace(config.model))
    config.pos_weight = float((labels == 0).sum() / max((labels == 1).sum(), 1)) if config.balance_classes else 1.0
    if data.cache is None:
        if config.alpha_map > 0 or config.beta_sem > 0:
            log.info("no teacher cache: training on labels only (alpha-map and beta-sem set to 0)")
        config.alpha_map, config.beta_sem = 0.0, 0.0
        config.model.semantic_dim = 0
        config.teacher_fingerprint, config.teacher_random_weights = None, None
    else:
        config.teacher_fingerprint = data.cache.fingerprint
        config.teacher_random_weights = data.cache.random_weights
        config.model.semantic_dim = data.cache.embedding_dim if config.beta_sem > 0 else 0
        if config.alpha_map > 0 and config.min_epochs < SHORT_MAP_SCHEDULE:
            log.warning("a map term with --min-epochs %d: on the planted benchmark its classifier only learnt after "
                        "5-10 epochs, and early stopping before then cut it short (docs/results.md, section 2, "
                        "which ran --epochs 40 --patience 4 --min-epochs 25)", config.min_epochs)
    config.map_norm_note = {
        "mass": "map loss summed over real cells / max(teacher map mass, map_mean_target x cells, 1), mean over "
                "pairs",
        "mean": "map loss averaged over real cells, mean over pairs"}[config.map_norm]
    if config.map_loss == "kl":
        config.map_norm_note = ("kl of teacher rows and columns (as distributions) vs softmax of student logits, "
                                + {"mass": "rows weighted by teacher mass", "mean": "rows with mass weighted equally"
                                   }[config.map_norm])
    return config


def mean_target(dataset: PairDataset) -> float:
    """Mean teacher value over every cell of the training maps (full, uncropped) that enter the map loss."""
    total, cells = 0.0, 0
    for index in range(len(dataset)):
        target = dataset.target(index)
        if target is None:  # the pair's map_target flag is off
            continue
        total += float(target.sum(dtype=np.float64))
        cells += target.size
    return total / max(cells, 1)


# -- output directory ---------------------------------------------------------------------------------------------
def check_out(out: Path, resume: bool, overwrite: bool, inputs: dict[str, str | None] | None = None) -> None:
    """Refuse an --out that holds a run unless --resume or --overwrite says what to do with it, and a run file
    that is one of the `inputs` (it would be replaced or deleted) in any case."""
    check_outputs({str(out / name): out / name for name in RUN_FILES}, inputs, overwrite or resume,
                  hint=f"{out} holds a training run: pass --resume to continue it or --overwrite to replace it")


def prepare_out(out: Path, resume: bool, overwrite: bool, inputs: dict[str, str | None] | None = None) -> None:
    check_out(out, resume, overwrite, inputs)
    present = [name for name in RUN_FILES if (out / name).exists()]
    if present and not resume:
        for name in present:
            (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_json(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_history(path: Path, history: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in HISTORY_FIELDS})


def _comparable(config_dict: dict) -> dict:
    return {k: v for k, v in config_dict.items() if k not in RESUME_FREE_KEYS}


# -- evaluation ---------------------------------------------------------------------------------------------------
# -- training -----------------------------------------------------------------------------------------------------
def lr_factor(step: int, total: int, warmup_steps: int) -> float:
    """Linear warm-up to 1 over warmup_steps, then cosine decay to 0 at `total`."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _stops(config: TrainConfig, bad_epochs: int, epochs_done: int) -> bool:
    """Early stopping: `patience` epochs without a better validation AUPR, and at least `min_epochs` run."""
    return bad_epochs >= config.patience and epochs_done >= config.min_epochs


def _model_payload(model: StudentModel, config: TrainConfig, extra: dict) -> dict:
    return {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model_config": config.model.to_dict(), "train_config": config.to_dict(),
            "teacher_fingerprint": config.teacher_fingerprint, **extra}


def train(config: TrainConfig, progress: bool = False,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Run a whole training (see the module docstring); returns valid/test metrics, best_epoch, seconds, ...

    on_epoch(epoch, history_row) is called after each epoch's checkpoints are written.
    """
    started = time.perf_counter()
    if not config.out:
        raise UserError("an output directory (--out) is required")
    out = Path(config.out)
    inputs = {"--pairs": config.pairs, "--fasta": config.fasta, "--cache": config.cache,
              "--unlabelled-pairs": config.unlabelled_pairs}
    check_out(out, config.resume, config.overwrite, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(out, "run directory"):  # two runs on one --out would mix their files: the second is refused
        return _train_locked(config, out, inputs, started, progress, on_epoch)


def _train_locked(config: TrainConfig, out: Path, inputs: dict, started: float, progress: bool,
                  on_epoch: Callable[[int, dict], None] | None) -> dict:
    data = load_run_data(config)  # inputs are checked before an old run is removed
    if config.map_first_epochs and (data.cache is None or (config.alpha_map == 0 and config.beta_sem == 0)):
        raise UserError(f"--map-first-epochs {config.map_first_epochs} trains the teacher terms alone first, but this "
                        "run has none (no --cache, or --alpha-map and --beta-sem 0)")
    prepare_out(out, config.resume, config.overwrite, inputs)
    device = resolve_device(config.device)
    config = resolve_config(config, data)

    extra = data.unlabelled
    if extra and config.alpha_map == 0 and config.beta_sem == 0:
        log.info("no map or semantic term: the %d unlabelled pair(s) are not used", len(extra))
        extra = []
    n_cells = sum(len(p.seq_a) * len(p.seq_b) for p in data.train + extra + data.valid + data.test)
    preload = config.preload if config.preload is not None else n_cells <= config.preload_max_cells
    map_target = config.map_target if data.cache is not None else None
    train_set = PairDataset(data.train + extra, data.cache, map_target, with_embeddings=config.beta_sem > 0,
                            max_len=config.max_len, random_crop=True, seed=config.seed, preload=preload)
    valid_set = PairDataset(data.valid, data.cache, map_target, preload=preload)
    valid_labels_only = PairDataset(data.valid)  # per-epoch validation needs no teacher maps
    test_set = PairDataset(data.test, data.cache, map_target, preload=preload)
    if data.cache is not None:
        config.map_mean_target = mean_target(train_set)
        config.model.map_bias_init = log_odds(config.map_mean_target)

    # resume or start
    last_path, best_path = out / "last.pt", out / "best.pt"
    state = None
    if config.resume and last_path.exists():
        state = read_checkpoint(last_path)
        saved = TrainConfig.from_dict(state["train_config"])
        if _comparable(saved.to_dict()) != _comparable(config.to_dict()):
            changed = sorted(k for k, v in _comparable(config.to_dict()).items()
                             if _comparable(saved.to_dict()).get(k) != v)
            raise UserError(f"{last_path} was written with other settings ({', '.join(changed)}); resume with the "
                            "same options, or start again with --overwrite")
    elif config.resume:
        log.info("%s holds no last.pt: starting from the beginning", out)
    write_json(out / "config.json", config.to_dict())

    torch.manual_seed(config.seed)
    model = StudentModel(config.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sampler = LengthBucketSampler(batch_sizes(train_set.lengths, config.max_len), config.batch_size, shuffle=True,
                                  seed=config.seed)
    steps_per_epoch = len(sampler)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(round(config.warmup * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, warmup_steps))
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=config.workers,
                        persistent_workers=False)

    history: list[dict] = []
    start_epoch, best_aupr, best_loss, best_epoch, bad_epochs = 0, -math.inf, math.inf, -1, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"])
        trainer_state = state["trainer"]
        start_epoch, best_aupr = trainer_state["next_epoch"], trainer_state["best_aupr"]
        best_loss = trainer_state["best_loss"]
        best_epoch, bad_epochs = trainer_state["best_epoch"], trainer_state["bad_epochs"]
        history = list(trainer_state["history"])
        log.info("resuming %s at epoch %d", out, start_epoch + 1)

    bar = _Progress(progress, config.epochs, steps_per_epoch, start_epoch)
    try:
        epoch = start_epoch
        stopped = _stops(config, bad_epochs, epoch)
        while epoch < config.epochs and not stopped:
            epoch_started = time.perf_counter()
            sampler.set_epoch(epoch)
            train_set.set_epoch(epoch)
            model.train()
            sums: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {}
            map_first = epoch < config.map_first_epochs  # the curriculum's epochs: teacher terms only
            ce_weight = 0.0 if map_first else 1.0
            for batch in loader:
                batch = to_device(batch, device)
                with autocast_for(device):
                    outputs = model(batch["tokens_a"], batch["mask_a"], batch["tokens_b"], batch["mask_b"],
                                    batch["length_a"], batch["length_b"])
                loss, parts = total_loss(outputs, batch, config.pos_weight, config.alpha_map, config.beta_sem,
                                         config.map_loss, config.map_norm, config.map_mean_target or 0.0,
                                         config.map_pairs, config.map_confidence, config.map_rank_k,
                                         config.map_top_target, config.ce_norm, ce_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
                optimizer.step()
                scheduler.step()
                parts["loss"] = loss.detach()
                for name, value in parts.items():  # a batch of unlabelled pairs only has no "ce"
                    sums[name] = sums.get(name, 0.0) + value.float()
                    counts[name] = counts.get(name, 0) + 1
                bar.step(float(loss.detach()) if progress else None)
            train_means = {name: float(value) / counts[name] for name, value in sums.items()}
            valid_metrics, _ = evaluate_dataset(model, valid_labels_only, config.batch_size, device,
                                                pos_weight=config.pos_weight)
            # better AUPR, or the same AUPR (e.g. 1.0 on an easy set) at a lower validation loss
            score = valid_metrics["aupr"] if valid_metrics["aupr"] is not None else -math.inf
            improved = not map_first and (score > best_aupr + 1e-12 or (abs(score - best_aupr) <= 1e-12
                                                                        and valid_metrics["loss"] < best_loss))
            if improved:
                best_aupr, best_loss, best_epoch, bad_epochs = score, valid_metrics["loss"], epoch, 0
                save_checkpoint(best_path, _model_payload(model, config, {"epoch": epoch, "threshold": 0.5}))
            elif not map_first:  # an untrained classifier is neither a best epoch nor a bad one
                bad_epochs += 1
            row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                   "train_loss": train_means.get("loss"), "train_ce": train_means.get("ce"),
                   "train_map": train_means.get("map"), "train_sem": train_means.get("sem"),
                   "valid_loss": valid_metrics.get("loss"), "valid_aupr": valid_metrics["aupr"],
                   "valid_auroc": valid_metrics["auroc"], "best": int(improved),
                   "seconds": round(time.perf_counter() - epoch_started, 3)}
            history.append(row)
            epoch += 1
            stopped = _stops(config, bad_epochs, epoch)
            rng = {"torch": torch.get_rng_state(),
                   "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}
            save_checkpoint(last_path, _model_payload(model, config, {
                "epoch": epoch - 1, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng, "trainer": {"next_epoch": epoch, "best_aupr": best_aupr, "best_loss": best_loss,
                                        "best_epoch": best_epoch,
                                        "bad_epochs": bad_epochs, "history": history}}))
            write_history(out / "history.csv", history)
            bar.epoch_done(row)
            if on_epoch is not None:
                on_epoch(epoch - 1, row)
    finally:
        bar.close()

    # final evaluation of the best epoch; the threshold is picked on validation
    best = read_checkpoint(best_path, device)
    model.load_state_dict(best["model"])
    with_maps = data.cache is not None
    _, valid_probs = evaluate_dataset(model, valid_labels_only, config.batch_size, device,
                                      pos_weight=config.pos_weight)
    threshold = pick_threshold(np.array([p.label for p in data.valid]), valid_probs)
    valid_metrics, _ = evaluate_dataset(model, valid_set, config.batch_size, device, threshold, config.pos_weight,
                                        with_maps=with_maps)
    if data.test:
        test_metrics, _ = evaluate_dataset(model, test_set, config.batch_size, device, threshold, config.pos_weight,
                                           with_maps=with_maps)
    else:
        test_metrics = {"n": 0}
    seconds = time.perf_counter() - started
    results = {"valid": valid_metrics, "test": test_metrics, "best_epoch": best_epoch + 1,
               "epochs_run": len(history), "stopped_early": len(history) < config.epochs,
               "threshold": threshold, "seconds": seconds, "split": data.split,
               "train_pairs": len(data.train), "pairs_sha256": data.pairs_sha256,
               "teacher_fingerprint": config.teacher_fingerprint,
               "teacher_random_weights": config.teacher_random_weights, "device": str(device),
               "out": str(out)}
    save_checkpoint(best_path, _model_payload(model, config, {
        "epoch": best_epoch, "threshold": threshold, "metrics": {"valid": valid_metrics, "test": test_metrics},
        "split": data.split, "pairs_sha256": data.pairs_sha256}))
    write_json(out / "metrics.json", results)
    if data.cache is not None:
        data.cache.close()
    return results


class _Progress:
    """Rich progress over optimiser steps (only when asked for: the library is silent by default)."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int, start_epoch: int):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[status]}"), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=epochs * steps_per_epoch,
                                           completed=start_epoch * steps_per_epoch, status="")
        self.last = ""

    def step(self, loss: float | None) -> None:
        if self.enabled:
            self.progress.update(self.task, advance=1, status=f"loss {loss:.4f} {self.last}")

    def epoch_done(self, row: dict) -> None:
        if self.enabled:
            aupr = row["valid_aupr"]
            self.last = (f"| epoch {row['epoch']} valid AUPR {aupr:.3f}" if aupr is not None else
                         f"| epoch {row['epoch']}")
            self.progress.update(self.task, status=f"loss {row['train_loss']:.4f} {self.last}")

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
