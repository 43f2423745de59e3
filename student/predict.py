"""`predict`: a trained student's probabilities of a pairs file as TSV, its maps as HDF5 and heatmaps.

Needs only a checkpoint and sequences: no teacher, and fair-esm is never imported (tests check it). The batched
inference itself is `student.inference`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data.atomic import atomic_path, check_free_space, check_outputs
from data.device import resolve_device
from data.errors import UserError
from data.pairs import Pair
from student.dataset import align_target
from student.inference import predict_pairs


def write_predictions(path: str | Path, pairs: list[Pair], probs: np.ndarray, threshold: float | None = None,
                      notes: list[str] | None = None) -> Path:
    """TSV `id_a id_b probability [predicted] [label]`, written atomically; each of `notes` is a `# ` line above
    the header (pairs readers skip such lines)."""
    path = Path(path)
    with_label = any(p.label is not None for p in pairs)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for note in notes or []:
            handle.write(f"# {note}\n")
        header = ["id_a", "id_b", "probability"] + (["predicted"] if threshold is not None else []) + (
            ["label"] if with_label else [])
        handle.write("\t".join(header) + "\n")
        for pair, prob in zip(pairs, probs):
            row = [pair.id_a, pair.id_b, f"{prob:.6f}"]
            if threshold is not None:
                row.append(str(int(prob >= threshold)))
            if with_label:
                row.append("" if pair.label is None else str(pair.label))
            handle.write("\t".join(row) + "\n")
    return path


def write_maps(path: str | Path, pairs: list[Pair], maps: list[np.ndarray], attrs: dict | None = None) -> Path:
    """HDF5 with one float32 dataset per pair, `/maps/<row>` (rows = residues of id_a), attrs id_a, id_b;
    `/id_a`, `/id_b` list the pairs in order. Written atomically."""
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["content"] = "student interaction maps: sigmoid of the calibrated map logits"
            for name, value in (attrs or {}).items():
                handle.attrs[name] = value
            handle.create_dataset("id_a", data=np.array([p.id_a for p in pairs], dtype=object),
                                  dtype=h5py.string_dtype())
            handle.create_dataset("id_b", data=np.array([p.id_b for p in pairs], dtype=object),
                                  dtype=h5py.string_dtype())
            group = handle.create_group("maps")
            for row, (pair, pair_map) in enumerate(zip(pairs, maps)):
                dataset = group.create_dataset(str(row), data=np.asarray(pair_map, dtype=np.float32),
                                               compression="gzip", compression_opts=4)
                dataset.attrs["id_a"], dataset.attrs["id_b"] = pair.id_a, pair.id_b
    return path


def check_predictions(probs: np.ndarray, pairs: list[Pair], checkpoint: str | Path) -> None:
    """Refuse NaN or infinite probabilities (a broken model), naming the checkpoint and a pair."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(probs, dtype=np.float64)))
    if len(bad):
        first = pairs[int(bad[0])]
        raise UserError(f"{checkpoint}: the model gives non-finite probabilities (NaN or infinite) for {len(bad)} of "
                        f"{len(pairs)} pairs (e.g. {first.id_a}/{first.id_b}); nothing was written: the checkpoint "
                        "is broken, use another one")


RANDOM_TEACHER_TITLE = "student trained on a RANDOM-weight teacher"  # the heatmaps' line
RANDOM_TEACHER_NOTE = (f"{RANDOM_TEACHER_TITLE}: its maps carry no biological signal (a test of the pipeline, not "
                       "a result)")  # the TSV's line


def random_teacher_note(checkpoint: dict) -> str:
    """The warning a student of a random-weight teacher carries into its outputs, or ""."""
    return RANDOM_TEACHER_NOTE if (checkpoint.get("train_config") or {}).get("teacher_random_weights") else ""


def run_predict(config) -> dict:
    """`predict`: probabilities TSV, optional maps HDF5 and heatmaps (student.config.PredictConfig)."""
    from data.fasta import read_fasta
    from data.pairs import read_pairs
    from student.checkpoint import load_checkpoint

    check_outputs({"--out": config.out, "--maps": config.maps},
                  {"--checkpoint": config.checkpoint, "--pairs": config.pairs, "--fasta": config.fasta,
                   "--cache": config.cache}, config.overwrite, folders={"--plot": config.plot})
    device = resolve_device(config.device)
    model, checkpoint = load_checkpoint(config.checkpoint, device)
    sequences = read_fasta(config.fasta)
    pairs = read_pairs(config.pairs, sequences).pairs
    if config.maps is not None:  # float32 maps before compression, and their ids
        check_free_space(config.maps, sum(4 * len(p.seq_a) * len(p.seq_b) + 256 for p in pairs), "--maps")
    want_maps = config.maps is not None or config.plot is not None
    result = predict_pairs(model, pairs, config.batch_size, device, return_maps=want_maps)
    probs, maps = result if want_maps else (result, None)
    check_predictions(probs, pairs, config.checkpoint)
    threshold = float(checkpoint.get("threshold", 0.5))
    note = random_teacher_note(checkpoint)
    write_predictions(config.out, pairs, probs, threshold, notes=[note] if note else None)
    summary = {"pairs": len(pairs), "out": str(config.out), "threshold": threshold,
               "predicted_positive": int((probs >= threshold).sum())}
    if config.maps is not None:
        write_maps(config.maps, pairs, maps, {"checkpoint": str(config.checkpoint)})
        summary["maps"] = str(config.maps)
    if config.plot is not None:
        summary["plots"] = plot_maps(config, pairs, probs, maps, note)
    return summary


def plot_maps(config, pairs: list[Pair], probs: np.ndarray, maps: list[np.ndarray], note: str = "") -> list[str]:
    """Heatmaps of the first `plot_max` pairs; with a cache, the teacher's map (the run's map target) beside,
    named for what it is (planted contacts, structure contacts, the teacher model)."""
    from student.config import TrainConfig
    from student.plots import plot_pair_maps, safe_name, teacher_panel_name

    folder = Path(config.plot)
    folder.mkdir(parents=True, exist_ok=True)
    cache, target_name = None, "contact"
    if config.cache:
        from teacher_cache import TeacherCache
        from student.checkpoint import read_checkpoint

        cache = TeacherCache.open(config.cache)
        target_name = TrainConfig.from_dict(read_checkpoint(config.checkpoint)["train_config"]).map_target
    label = teacher_panel_name(cache.info(), target_name) if cache is not None else ""
    written = []
    try:
        for row, pair in enumerate(pairs[: config.plot_max]):
            teacher = None
            if cache is not None and cache.has_pair(pair.seq_a, pair.seq_b):
                teacher = align_target(getattr(cache.pair(pair.seq_a, pair.seq_b), target_name), maps[row].shape)
            name = folder / f"{row:04d}_{safe_name(pair.id_a)}_{safe_name(pair.id_b)}.png"
            plot_pair_maps(name, maps[row], teacher, pair.id_a, pair.id_b, float(probs[row]), label,
                           RANDOM_TEACHER_TITLE if note else "")
            written.append(str(name))
    finally:
        if cache is not None:
            cache.close()
    return written
