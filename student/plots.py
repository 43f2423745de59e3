"""Heatmaps of interaction maps (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from data.atomic import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """Write `fig` to `path` atomically (no partial PNG after an error) and close it either way."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        pyplot().close(fig)
    return path


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:100]


def plot_pair_maps(path: str | Path, student_map: np.ndarray, teacher_map: np.ndarray | None = None,
                   id_a: str = "A", id_b: str = "B", probability: float | None = None,
                   teacher_label: str = "teacher", note: str = "") -> Path:
    """PNG of the student's map (rows = residues of id_a, columns = residues of id_b, numbered from 1), with the
    teacher's map beside it when given, on one colour scale with one labelled colour bar; `note` is added under
    the title (e.g. that the student learnt from a random-weight teacher). Written atomically."""
    plt = pyplot()
    panels = [("student", student_map)] + ([(teacher_label, teacher_map)] if teacher_map is not None else [])
    panels = [(name, np.asarray(values, dtype=np.float32)) for name, values in panels]
    len_a, len_b = student_map.shape
    height = 4.0 * max(0.5, min(2.0, len_a / max(len_b, 1))) + 1.2
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels) + 1.0, height), squeeze=False,
                             layout="constrained")
    extent = (0.5, len_b + 0.5, len_a + 0.5, 0.5)  # residue numbers, 1-based, on both axes
    # one scale from 0 to the largest value of any panel, so the panels compare by colour
    top = max((float(values.max()) for _, values in panels if values.size), default=1.0)
    for ax, (name, values) in zip(axes[0], panels):
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=max(top, 1e-6), extent=extent, aspect="auto",
                          interpolation="nearest")
        ax.set_title(f"{name}\n(max {float(values.max()) if values.size else 0.0:.3g})", fontsize=9)
        ax.set_xlabel(f"{id_b} residue")
        ax.set_ylabel(f"{id_a} residue")
    bar = fig.colorbar(image, ax=list(axes[0]), fraction=0.046, pad=0.02)
    bar.set_label("contact probability (map cell)")
    title = f"{id_a} x {id_b}" + (f"   p(interact) = {probability:.3f}" if probability is not None else "")
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=10)
    return save_figure(fig, path, dpi=100)


def teacher_panel_name(info: dict, map_name: str) -> str:
    """What a cache's map is, for a heatmap panel: planted contacts, structure contacts, or the teacher model."""
    if info.get("teacher") == "synthetic":
        return "planted contacts (oracle)" if map_name == "contact" else f"oracle {map_name} (synthetic)"
    if info.get("teacher") == "structure":
        return f"structure contacts ({map_name})" if map_name == "contact" else f"structure distances ({map_name})"
    model = Path(str(info.get("model") or "teacher")).name
    if info.get("random_weights"):
        return f"random-weight ESM-2 {model}: {map_name}"
    return f"{model}: {map_name}"
