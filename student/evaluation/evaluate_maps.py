"""How well a map (a teacher cache's, or a trained student's) finds the true inter-chain contacts of experimental
complexes.

Per complex, on the observed cells only (both residues have structure coordinates aligned to the sequences):
precision of the top-L/5 and top-10 cells among the true contacts (L = min(La, Lb)), AUPR over cells, and
interface-residue recall of the top-L/5 cells, each beside its chance level for that complex: the contact density
for the precisions and AUPR, and the expected recall of L/5 cells drawn at random for the interface recall.
Aggregates are means and medians over complexes (each complex counts once, whatever its size).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from data.atomic import atomic_path, check_outputs
from data.device import resolve_device
from data.errors import UserError
from data.fasta import read_fasta
from data.structure import (DEFAULT_CUTOFF, ComplexContacts, StructureLibrary, load_complex, manifest_inputs,
                            read_manifest)
from student.evaluation.config import EvaluateMapsConfig
from student.evaluation.map_metrics import contact_density, default_k, interface_recall, map_aupr, top_k_precision

log = logging.getLogger(__name__)

METRICS = ("precision_top_l5", "precision_top10", "aupr", "interface_recall")
CHANCE = {"precision_top_l5": "density", "precision_top10": "density", "aupr": "density",
          "interface_recall": "interface_recall_chance"}


@dataclass
class ComplexScore:
    id_a: str
    id_b: str
    line: int
    len_a: int
    len_b: int
    observed_cells: int
    contacts: int
    density: float  # chance level of the precisions and of AUPR
    k: int  # L/5
    precision_top_l5: float
    precision_top10: float
    aupr: float
    interface_recall: float  # interface residues hit by the top-L/5 cells
    interface_recall_chance: float  # its expectation for L/5 random observed cells


@dataclass
class MapEvaluation:
    source: str  # what was scored, in words
    random_teacher: bool  # the scored maps come from a randomly initialised model
    scores: list[ComplexScore]
    missing: list[str] = field(default_factory=list)  # complexes the source has no map for
    summary: dict = field(default_factory=dict)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def interface_recall_chance(true_contacts: np.ndarray, observed: np.ndarray, k: int) -> float:
    """Expected interface recall when k of the observed cells are drawn uniformly without replacement.

    A true interface row with n observed cells is hit with probability 1 - C(N - n, k) / C(N, k), N = all observed
    cells; the same for columns; the expectation is the mean over interface rows and columns.
    """
    observed = np.asarray(observed, dtype=bool)
    truth = (np.asarray(true_contacts) > 0.5) & observed
    total = int(observed.sum())
    k = min(k, total)
    hits, count = 0.0, 0
    for axis in (1, 0):
        interface = truth.any(axis=axis)
        per_line = observed.sum(axis=axis)
        for n in per_line[interface]:
            n = int(n)
            miss = 0.0 if total - n < k else math.exp(_log_comb(total - n, k) - _log_comb(total, k))
            hits += 1.0 - miss
            count += 1
    return hits / count if count else float("nan")


def score_complex(pred: np.ndarray, complex_: ComplexContacts, cutoff: float = DEFAULT_CUTOFF,
                  top_n: int = 10) -> ComplexScore:
    """All metrics of one predicted (La, Lb) map against the complex's true contacts, on observed cells."""
    truth = complex_.contacts(cutoff)
    observed = complex_.observed
    if pred.shape != truth.shape:
        raise ValueError(f"{complex_.row.where}: map shape {pred.shape} differs from the sequences' "
                         f"{truth.shape}")
    k = default_k(truth.shape)
    return ComplexScore(
        complex_.row.id_a, complex_.row.id_b, complex_.row.line, truth.shape[0], truth.shape[1],
        int(observed.sum()), int(truth.sum()), contact_density(truth, observed), k,
        top_k_precision(pred, truth, k, observed), top_k_precision(pred, truth, top_n, observed),
        map_aupr(pred, truth, observed), interface_recall(pred, truth, k, observed),
        interface_recall_chance(truth, observed, k))


def summarise(scores: list[ComplexScore]) -> dict:
    """{metric: {mean, median, std, chance_mean, ratio (mean / chance mean), above_chance (count)}} and n."""
    summary: dict = {"complexes": len(scores)}
    for metric in METRICS:
        values = np.array([getattr(s, metric) for s in scores], dtype=np.float64)
        chance = np.array([getattr(s, CHANCE[metric]) for s in scores], dtype=np.float64)
        ok = np.isfinite(values) & np.isfinite(chance)
        if not ok.any():
            summary[metric] = {}
            continue
        v, c = values[ok], chance[ok]
        summary[metric] = {"mean": float(v.mean()), "median": float(np.median(v)), "std": float(v.std()),
                           "chance_mean": float(c.mean()), "ratio": float(v.mean() / c.mean()) if c.mean() else
                           float("nan"), "above_chance": int((v > c).sum()), "n": int(ok.sum())}
    return summary


def write_scores(path: str | Path, scores: list[ComplexScore]) -> Path:
    """Per-complex TSV with a header, written atomically."""
    path = Path(path)
    names = list(asdict(scores[0]).keys()) if scores else list(ComplexScore.__dataclass_fields__)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\t".join(names) + "\n")
        for score in scores:
            values = asdict(score)
            handle.write("\t".join(f"{values[n]:.6g}" if isinstance(values[n], float) else str(values[n])
                                   for n in names) + "\n")
    return path


def plot_complex(path: str | Path, pred: np.ndarray, complex_: ComplexContacts, score: ComplexScore,
                 cutoff: float = DEFAULT_CUTOFF, title: str = "") -> Path:
    """PNG: the evaluated map beside the true contacts (unobserved cells grey), sequence positions on the axes;
    the top-L/5 predicted cells are circled on the true map."""
    import matplotlib

    from student.plots import pyplot, save_figure

    plt = pyplot()
    truth = complex_.contacts(cutoff)
    observed = complex_.observed
    shown = np.where(observed, pred, np.nan)
    extent = (0.5, truth.shape[1] + 0.5, truth.shape[0] + 0.5, 0.5)  # residue numbers from 1
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    image = axes[0].imshow(shown, cmap="viridis", extent=extent, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=axes[0], shrink=0.8)
    axes[0].set_title(f"evaluated map {title}".strip())
    truth_image = np.where(observed, truth.astype(float), np.nan)
    cmap = matplotlib.colormaps["Greys"].with_extremes(bad="#f4c2c2")
    axes[1].imshow(truth_image, cmap=cmap, vmin=0, vmax=1, extent=extent, aspect="auto", interpolation="nearest")
    scores = np.where(observed, pred, -np.inf).ravel()
    top = np.argsort(-scores, kind="stable")[:score.k]
    rows, cols = np.unravel_index(top, truth.shape)
    axes[1].scatter(cols + 1, rows + 1, s=30, facecolors="none", edgecolors="tab:red", linewidths=1.0,
                    label=f"top-{score.k} predicted")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[1].set_title(f"true contacts (CB < {cutoff:g} A; pink: no coordinates)")
    for ax in axes:
        ax.set_xlabel(f"{complex_.row.id_b} residue (sequence position)")
        ax.set_ylabel(f"{complex_.row.id_a} residue (sequence position)")
    fig.suptitle(f"{complex_.row.id_a} / {complex_.row.id_b}: P@L/5 {score.precision_top_l5:.2f} "
                 f"(chance {score.density:.3f}), AUPR {score.aupr:.3f}")
    return save_figure(fig, path, dpi=90)


def _cache_source(config: EvaluateMapsConfig) -> tuple[Callable[[list[ComplexContacts]], list], str, bool]:
    from teacher_cache.reader import TeacherCache

    cache = TeacherCache.open(config.cache)
    info = cache.info()
    random_teacher = bool(info["random_weights"])
    source = (f"teacher cache {config.cache} ({info['teacher']} {info['model']}"
              f"{', RANDOM weights' if random_teacher else ''}), map '{config.map_name}'")

    def maps(complexes: list[ComplexContacts]) -> list:
        out = []
        for c in complexes:
            if not cache.has_pair(c.seq_a, c.seq_b):
                out.append(None)
                continue
            out.append(getattr(cache.pair(c.seq_a, c.seq_b), config.map_name))
        return out

    return maps, source, random_teacher


def _student_source(config: EvaluateMapsConfig) -> tuple[Callable[[list[ComplexContacts]], list], str, bool]:
    from data.pairs import Pair
    from student.checkpoint import load_checkpoint
    from student.inference import predict_pairs

    device = resolve_device(config.device)
    model, checkpoint = load_checkpoint(config.checkpoint, device)
    random_teacher = bool(checkpoint.get("train_config", {}).get("teacher_random_weights"))
    source = f"student {config.checkpoint} (sigmoid of its map logits)"

    def maps(complexes: list[ComplexContacts]) -> list:
        pairs = [Pair(c.row.id_a, c.row.id_b, c.seq_a, c.seq_b) for c in complexes]
        _, predicted = predict_pairs(model, pairs, batch_size=config.batch_size, device=device,
                                     return_maps=True)
        return predicted

    return maps, source, random_teacher


def evaluate_maps(config: EvaluateMapsConfig,
                  progress: Callable[[int, int], None] | None = None) -> MapEvaluation:
    """Score the cache's or student's maps of every manifest complex against its true contacts."""
    rows = read_manifest(config.structures)
    check_outputs({"--out": config.out}, {"--structures": config.structures, "--cache": config.cache,
                                          "--checkpoint": config.checkpoint, "--fasta": config.fasta,
                                          **manifest_inputs(rows)},
                  config.overwrite, folders={"--plot": config.plot})
    sequences = read_fasta(config.fasta) if config.fasta else None
    maps_for, source, random_teacher = (_cache_source if config.cache else _student_source)(config)
    library = StructureLibrary()
    complexes = []
    for done, row in enumerate(rows, start=1):
        complexes.append(load_complex(row, sequences, config.min_identity, library))
        if progress:
            progress(done, 2 * len(rows))
    predicted = maps_for(complexes)
    if config.plot:
        Path(config.plot).mkdir(parents=True, exist_ok=True)
    scores, missing = [], []
    for done, (complex_, pred) in enumerate(zip(complexes, predicted), start=len(rows) + 1):
        if pred is None:
            missing.append(f"{complex_.row.id_a}/{complex_.row.id_b} ({complex_.row.where})")
            log.warning("%s: no map for %s/%s in the source; skipped", complex_.row.where, complex_.row.id_a,
                        complex_.row.id_b)
            continue
        score = score_complex(np.asarray(pred, dtype=np.float32), complex_, config.cutoff, config.top_n)
        scores.append(score)
        if config.plot:
            safe = f"{complex_.row.id_a}__{complex_.row.id_b}".replace("/", "_")
            plot_complex(Path(config.plot) / f"{complex_.row.line:05d}_{safe}.png", np.asarray(pred), complex_,
                         score, config.cutoff)
        if progress:
            progress(done, 2 * len(rows))
    if not scores:
        raise UserError(f"none of the {len(rows)} complexes of {config.structures} has a map in {source}: "
                        "were the maps computed for the same sequences (--fasta)?")
    if config.out:
        write_scores(config.out, scores)
    return MapEvaluation(source, random_teacher, scores, missing, summarise(scores))
