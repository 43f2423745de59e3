"""Ablation grid: which loss terms and which head make distillation work, and how that changes with the amount of
labelled data. Every run trains one student (`student.trainer.train`) on the same pairs, cache and fixed split.

Grid: heads (features | map | both) x loss terms (ce | ce+sem | ce+map | ce+map+sem) x training-set sizes x seeds.
A run's map settings (map loss, normalisation, weight) are recorded only when its loss has the map term, and the
semantic weight only when it has the semantic term, so rows that ran the same thing share a key: a second
ablation into the same directory with another map loss reuses the CE-only rows.

Outputs in `out`: results.csv (one row per finished run, rewritten atomically after each run; a re-run skips
the rows already there, so a killed ablation resumes; ablations running at once into one directory, say one seed
each, add their rows under a lock and keep each other's), summary.md (mean ± std over seeds), learning_curve.png,
ablate.json (the settings shared by every run; a re-run with other shared settings is refused), runs/<name>/
(each run's own output directory).
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import json
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from data.atomic import atomic_path, check_outputs, write_text_atomic
from data.errors import UserError
from data.fasta import read_fasta
from data.lock import FileLock
from data.pairs import Pair, read_pairs
from student.config import HEADS, ModelConfig, TrainConfig
from student.evaluation.config import LOSS_SETTINGS, SHARED_SETTING_NAMES, AblateConfig
from student.evaluation.map_metrics import default_k, top_k_precision

KEY_COLUMNS = ("head", "losses", "map_loss", "map_norm", "alpha_map", "beta_sem", "map_pairs", "map_confidence",
               "map_rank_k", "map_top_target", "n_train", "seed")
# Key columns added after the first results files: a row without one ran with this value (when it has a map term).
LATER_KEY_DEFAULTS = {"map_pairs": "all", "map_confidence": "False", "map_rank_k": "16", "map_top_target": "0"}
RESULT_COLUMNS = KEY_COLUMNS + ("aupr", "auroc", "map_top_l5", "valid_aupr", "valid_auroc", "valid_map_top_l5",
                                "epochs", "best_epoch", "seconds", "student_code")
# The modules whose content decides a run's result; their hash goes into every row (`student_code`). Named as
# modules, so a module that moves fails loudly here instead of hashing as empty.
STUDENT_CODE = ("data.splits", "student.config", "student.model", "student.losses", "student.dataset",
                "student.trainer", "student.inference", "student.evaluation.metrics")
TrainFn = Callable[[TrainConfig], dict]


@dataclass(frozen=True)
class RunSpec:
    head: str
    losses: str
    map_loss: str  # "" when the run has no map term
    map_norm: str
    alpha_map: float
    beta_sem: float
    n_train: int
    seed: int
    map_pairs: str = ""  # "" when the run has no map term
    map_confidence: str = ""
    map_rank_k: str = ""
    map_top_target: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(_key_text(getattr(self, name)) for name in KEY_COLUMNS)

    @property
    def name(self) -> str:
        """Directory name of the run."""
        loss = self.losses.replace("+", "-")
        if self.map_loss:
            loss += f"_{self.map_loss}-{self.map_norm}-a{self.alpha_map:g}"
            if self.map_pairs not in ("", "all"):
                loss += f"-{self.map_pairs}"
            if self.map_confidence == "True":
                loss += "-peak"
            if self.map_loss == "rank":
                loss += f"-k{self.map_rank_k}"
            if self.map_top_target not in ("", "0"):
                loss += f"-top{self.map_top_target}"
        if self.beta_sem:
            loss += f"_b{self.beta_sem:g}"
        return f"{self.head}_{loss}_n{self.n_train}_s{self.seed}"


@dataclass
class AblateResult:
    results_csv: Path
    summary_md: Path
    plot_png: Path | None
    ran: int
    skipped: int
    rows: list[dict[str, str]]


def _key_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def grid(config: AblateConfig) -> list[RunSpec]:
    """Every run of the grid, smallest training sets first (so a time-limited ablation fills the curve's start)."""
    specs = []
    for n_train in sorted(config.n_train):
        for seed in config.seeds:
            for losses in config.losses:
                with_map, with_sem = "map" in losses, "sem" in losses
                for head in config.heads:
                    specs.append(RunSpec(head, losses, config.map_loss if with_map else "",
                                         config.map_norm if with_map else "",
                                         config.alpha_map if with_map else 0.0,
                                         config.beta_sem if with_sem else 0.0, n_train, seed,
                                         config.map_pairs if with_map else "",
                                         str(config.map_confidence) if with_map else "",
                                         str(config.map_rank_k) if with_map else "",
                                         str(config.map_top_target) if with_map else ""))
    return specs


def train_config(config: AblateConfig, spec: RunSpec, run_dir: Path) -> TrainConfig:
    """The TrainConfig of one run: the ablation's shared settings, the run's grid point on top."""
    shared = {f.name: getattr(config, f.name) for f in fields(TrainConfig)}
    shared.update(map_pairs=spec.map_pairs or config.map_pairs,
                  map_confidence=(spec.map_confidence == "True") if spec.map_confidence else config.map_confidence,
                  map_rank_k=int(spec.map_rank_k) if spec.map_rank_k else config.map_rank_k,
                  map_top_target=int(spec.map_top_target) if spec.map_top_target else config.map_top_target)
    shared.update(out=str(run_dir), model=replace(config.model, head=spec.head),
                  map_loss=spec.map_loss or config.map_loss, map_norm=spec.map_norm or config.map_norm,
                  alpha_map=spec.alpha_map, beta_sem=spec.beta_sem, seed=spec.seed, split="column",
                  n_train=spec.n_train, overwrite=True, resume=False)
    if not spec.alpha_map and not spec.beta_sem:
        shared["map_first_epochs"] = 0  # a curriculum of the teacher terms: a CE-only run has none
    return TrainConfig(**shared)


def _metric(metrics: dict | None, name: str) -> str:
    if not metrics or metrics.get(name) is None:
        return ""
    value = float(metrics[name])
    return "" if np.isnan(value) else f"{value:.4f}"


def student_code_hash() -> str:
    """First 12 hex digits of the SHA-256 over the source files of the modules that decide a run's result."""
    digest = hashlib.sha256()
    for name in STUDENT_CODE:
        source = Path(importlib.import_module(name).__file__).read_bytes()
        digest.update(name.encode() + b"\0" + source + b"\0")
    return digest.hexdigest()[:12]


def contact_map_precision(checkpoint: Path, pairs: list[Pair], cache_path: str,
                          pairs_path: str | None = None) -> float | None:
    """Mean over pairs with contacts of the top-L/5 precision (L = min(La, Lb)) of the student's map against the
    reference contacts; None without any. The reference is the planted truth when the cache is synthetic and
    `pairs_path` is a `synth` pairs table (so an imperfect teacher is never its own judge), else the cache's
    contact map binarised at 0.5 (for an oracle cache the same thing).
    """
    from data.synth import planted_truth, truth_block
    from student.checkpoint import load_checkpoint
    from student.inference import predict_pairs
    from teacher_cache import TeacherCache

    with TeacherCache.open(cache_path) as cache:
        truth = planted_truth(pairs_path) if pairs_path and cache.settings.get("synthetic") else None
        if truth is not None:
            motif_len = int(cache.settings["motif_len"])
            references = [truth_block((len(p.seq_a), len(p.seq_b)), *truth[(p.id_a, p.id_b)], motif_len)
                          for p in pairs]
        else:
            pairs = [p for p in pairs if p.map_target]  # a pair with its map flag off has no reference map
            references = [cache.pair(p.seq_a, p.seq_b).contact > 0.5 for p in pairs]
    chosen = [i for i, ref in enumerate(references) if ref.any()]
    if not chosen:
        return None
    model, _ = load_checkpoint(checkpoint)
    _, maps = predict_pairs(model, [pairs[i] for i in chosen], return_maps=True)
    precisions = [top_k_precision(pred, references[i], default_k(pred.shape)) for pred, i in zip(maps, chosen)]
    return float(np.mean(precisions))


def result_row(spec: RunSpec, result: dict, seconds: float, epochs_default: int,
               map_precision: dict[str, float | None], student_code: str = "") -> dict[str, str]:
    test, valid = result.get("test") or {}, result.get("valid") or {}
    row = dict(zip(KEY_COLUMNS, spec.key))
    row.update(aupr=_metric(test, "aupr"), auroc=_metric(test, "auroc"),
               map_top_l5=_metric(map_precision, "test"), valid_aupr=_metric(valid, "aupr"),
               valid_auroc=_metric(valid, "auroc"), valid_map_top_l5=_metric(map_precision, "valid"),
               epochs=str(result.get("epochs_run", epochs_default)),
               best_epoch=str(result.get("best_epoch", "")), seconds=f"{seconds:.1f}",
               student_code=student_code)
    return row


def read_results(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in KEY_COLUMNS if c not in (reader.fieldnames or []) and c not in LATER_KEY_DEFAULTS]
        if missing:
            raise UserError(f"{path} is not an ablation results file (no column {', '.join(missing)})")
        rows = list(reader)
    for row in rows:
        for name, default in LATER_KEY_DEFAULTS.items():
            if name not in row or row[name] is None:
                row[name] = default if row.get("map_loss") else ""
    return rows


def _key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[c] for c in KEY_COLUMNS)


def add_result(path: Path, row: dict[str, str]) -> list[dict[str, str]]:
    """Add one run's row to the results file and return all its rows. The file is re-read under a lock, so two
    ablations writing into one folder (say, one seed each) keep each other's rows; a row of the same key replaces
    the older one."""
    with FileLock(path, "results file", wait=True):
        rows = [r for r in read_results(path) if _key(r) != _key(row)] + [row]
        write_results(path, rows)
    return rows


def write_results(path: Path, rows: list[dict[str, str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(RESULT_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _check_inputs(config: AblateConfig) -> dict[str, list[Pair]]:
    """The labelled pairs of each part, after checking that the grid can run on them."""
    for name in ("pairs", "fasta", "cache"):
        if not Path(getattr(config, name)).exists():
            raise UserError(f"{name} file {getattr(config, name)} does not exist")
    table = read_pairs(config.pairs, read_fasta(config.fasta), require_labels=True)
    if not table.has_split:
        raise UserError(f"{config.pairs} has no split column: an ablation compares runs on one fixed split "
                        "(write one with `python cli.py synth` or add a train/valid/test column)")
    n_available = sum(p.split == "train" for p in table.pairs)
    too_big = [n for n in config.n_train if n > n_available]
    if too_big:
        raise UserError(f"training-set size(s) {too_big} exceed the {n_available} training pairs of {config.pairs}")
    return {part: [p for p in table.pairs if p.split == part] for part in ("valid", "test")}


def _check_shared_settings(config: AblateConfig, out: Path) -> None:
    settings_path = out / "ablate.json"
    shared = json.loads(json.dumps(config.shared_settings()))
    if settings_path.exists():
        earlier = json.loads(settings_path.read_text())
        if isinstance(earlier.get("model"), dict):  # fields added to ModelConfig since read as their old behaviour
            earlier["model"] = json.loads(json.dumps(ModelConfig.from_dict(earlier["model"]).to_dict()))
        # saved before these settings existed: what those runs did
        for name, value in (("min_epochs", 0), ("unlabelled_pairs", None), ("ce_norm", "labelled"),
                            ("map_first_epochs", 0)):
            earlier.setdefault(name, value)
        # CE normalisation changes nothing without unlabelled pairs (the two are the same loss): not a difference
        meaning = [s if s.get("unlabelled_pairs") else {**s, "ce_norm": None} for s in (earlier, shared)]
        changed = [name for name in SHARED_SETTING_NAMES if meaning[0].get(name) != meaning[1].get(name)]
        if changed:
            raise UserError(f"{out} holds an ablation run with other settings ({', '.join(changed)}); use a new "
                            "--out directory or the same settings")
        return
    write_text_atomic(settings_path, json.dumps(shared, indent=2, sort_keys=True) + "\n")


def run_ablation(config: AblateConfig, train_fn: TrainFn | None = None,
                 progress: Callable[[RunSpec, dict[str, str] | None], None] | None = None) -> AblateResult:
    """Run every grid point not yet in out/results.csv, then write the summary and the learning-curve plot.

    `progress(spec, None)` is called before each run and `progress(spec, row)` after it; skipped runs are not
    reported. `train_fn` defaults to `student.trainer.train` (tests pass a stand-in).
    """
    if train_fn is None:
        from student.trainer import train as train_fn  # noqa: N813 - imported late: tests pass their own
    code = student_code_hash()  # taken when the modules are imported, not when the files change later
    parts = _check_inputs(config)
    out = Path(config.out)
    # The run folder is extended by design (runs already in results.csv are skipped); no input may live there.
    check_outputs({str(out / name): out / name for name in ("results.csv", "summary.md", "learning_curve.png",
                                                             "ablate.json")},
                  {"--pairs": config.pairs, "--fasta": config.fasta, "--cache": config.cache}, overwrite=True)
    out.mkdir(parents=True, exist_ok=True)
    _check_shared_settings(config, out)
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    results_path = out / "results.csv"
    rows = read_results(results_path)
    ran = skipped = 0
    for spec in grid(config):
        rows = read_results(results_path)  # another ablate into the same folder may have added rows meanwhile
        if spec.key in {_key(row) for row in rows}:
            skipped += 1
            continue
        if progress is not None:
            progress(spec, None)
        run_dir = out / "runs" / spec.name
        started = time.perf_counter()
        result = train_fn(train_config(config, spec, run_dir))
        seconds = time.perf_counter() - started
        checkpoint = run_dir / "best.pt"
        map_precision = {part: contact_map_precision(checkpoint, pairs, config.cache, config.pairs)
                         for part, pairs in parts.items()} if checkpoint.exists() else {}
        row = result_row(spec, result, seconds, config.epochs, map_precision, code)
        rows = add_result(results_path, row)
        ran += 1
        if progress is not None:
            progress(spec, row)
    summary_path, plot_path = write_report(out, rows)
    return AblateResult(results_path, summary_path, plot_path, ran, skipped, rows)


def write_report(out: str | Path, rows: list[dict[str, str]] | None = None) -> tuple[Path, Path | None]:
    """(Re)write out/summary.md and out/learning_curve.png from out/results.csv (or the given rows)."""
    out = Path(out)
    if rows is None:
        if not (out / "results.csv").exists():
            raise UserError(f"{out} holds no results.csv")
        rows = read_results(out / "results.csv")
    summary_path = out / "summary.md"
    write_text_atomic(summary_path, summary_markdown(rows))
    return summary_path, plot_learning_curve(rows, out / "learning_curve.png")


# -- summaries --------------------------------------------------------------------------------------------------
GROUP_COLUMNS = ("head", "losses", "map_loss", "map_norm", "alpha_map", "beta_sem", "map_pairs", "map_confidence",
                 "map_rank_k", "map_top_target", "n_train")


def _values(rows: list[dict[str, str]], name: str) -> np.ndarray:
    return np.array([float(r[name]) for r in rows if r.get(name, "") != ""], dtype=np.float64)


def mean_std(values: np.ndarray) -> str:
    """'mean ± sample std' of values (one value as it is, none as '-'), three decimals."""
    if values.size == 0:
        return "-"
    if values.size == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def summarise(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One entry per grid point without the seed: its rows and mean/std of the test metrics."""
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[c] for c in GROUP_COLUMNS), []).append(row)
    heads, losses = list(HEADS), list(LOSS_SETTINGS)
    at_n = GROUP_COLUMNS.index("n_train")
    order = sorted(groups, key=lambda k: (int(k[at_n]), heads.index(k[0]) if k[0] in heads else 9,
                                          losses.index(k[1]) if k[1] in losses else 9, k[2:6]))
    return [{"key": dict(zip(GROUP_COLUMNS, key)), "rows": groups[key]} for key in order]


def _variant_text(key: dict[str, str]) -> str:
    """The issue-16 map-loss variant of a group, for tables and legends ("" for the plain loss)."""
    text = ""
    if key.get("map_pairs") not in (None, "", "all"):
        text += f", {key['map_pairs']} only"
    if key.get("map_confidence") == "True":
        text += ", peak-weighted"
    if key.get("map_loss") == "rank":
        text += f", k={key.get('map_rank_k')}"
    if key.get("map_top_target") not in (None, "", "0"):
        text += f", top-{key['map_top_target']} target"
    return text


def summary_markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| n_train | head | losses | map loss | AUPR (test) | AUROC (test) | map top-L/5 (test) | "
             "AUPR (valid) | seeds | s / run |",
             "|---:|---|---|---|---|---|---|---|---:|---:|"]
    for group in summarise(rows):
        key, members = group["key"], group["rows"]
        map_text = f"{key['map_loss']}/{key['map_norm']}, α={key['alpha_map']}" if key["map_loss"] else "-"
        map_text += _variant_text(key)
        if key["beta_sem"] not in ("0", ""):
            map_text += f"; β={key['beta_sem']}"
        seconds = _values(members, "seconds")
        lines.append(f"| {key['n_train']} | {key['head']} | {key['losses']} | {map_text} | "
                     f"{mean_std(_values(members, 'aupr'))} | {mean_std(_values(members, 'auroc'))} | "
                     f"{mean_std(_values(members, 'map_top_l5'))} | {mean_std(_values(members, 'valid_aupr'))} | "
                     f"{len(members)} | {seconds.mean():.0f} |")
    note = ("mean ± sample std over seeds; AUPR/AUROC of the interaction label on the test part; map top-L/5: "
            "precision of the student map's top L/5 cells against the reference contact map of positive test pairs.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot_learning_curve(rows: list[dict[str, str]], path: Path) -> Path | None:
    """Test AUPR against training-set size, one panel per head, one line per loss setting (mean ± std)."""
    if not rows:
        return None
    from student.plots import pyplot, save_figure

    plt = pyplot()
    heads = [h for h in HEADS if any(r["head"] == h for r in rows)]
    fig, axes = plt.subplots(1, len(heads), figsize=(4.2 * len(heads), 3.6), sharey=True, squeeze=False)
    for ax, head in zip(axes[0], heads):
        lines: dict[str, dict[int, np.ndarray]] = {}
        for group in summarise([r for r in rows if r["head"] == head]):
            key = group["key"]
            label = key["losses"] + (f" ({key['map_loss']}/{key['map_norm']}, α={key['alpha_map']}"
                                     f"{_variant_text(key)})" if key["map_loss"] else "")
            lines.setdefault(label, {})[int(key["n_train"])] = _values(group["rows"], "aupr")
        for number, (label, points) in enumerate(lines.items()):
            sizes = sorted(n for n in points if points[n].size)
            means = [points[n].mean() for n in sizes]
            stds = [points[n].std(ddof=1) if points[n].size > 1 else 0.0 for n in sizes]
            dodge = 1.0 + 0.02 * (number - (len(lines) - 1) / 2)  # side by side, not on top of each other
            ax.errorbar([n * dodge for n in sizes], means, yerr=stds, marker="o", capsize=3, label=label)
        ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_title(f"{head} head")
        ax.set_xlabel("training pairs")
        ax.set_ylim(0.3, 1.02)
    axes[0][0].set_ylabel("test AUPR (mean ± std over seeds)")
    handles, labels = {}, []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    fig.legend([handles[label] for label in labels], labels, fontsize=7, loc="lower center", ncol=3,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06 * ((len(labels) + 2) // 3), 1, 1))
    return save_figure(fig, path, dpi=120)


def data_dir_inputs(data_dir: str | None, pairs: str | None, fasta: str | None, cache: str | None) -> dict[str, str]:
    """pairs, fasta and cache of the grid: each given one, else the file of that name in a `synth` folder."""
    if data_dir:
        base = Path(data_dir)
        pairs, fasta, cache = (pairs or str(base / "pairs.tsv"), fasta or str(base / "seqs.fasta"),
                               cache or str(base / "cache.h5"))
    if not (pairs and fasta and cache):
        raise UserError("give --data DIR, or all of --pairs, --fasta and --cache")
    return {"pairs": pairs, "fasta": fasta, "cache": cache}
