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
                   teacher_label: str = "teacher") -> Path:
    """PNG of the student's map (rows = residues of id_a, columns = residues of id_b, numbered from 1), with the
    teacher's map beside it when given. Written atomically."""
    plt = pyplot()
    panels = [("student", student_map)] + ([(teacher_label, teacher_map)] if teacher_map is not None else [])
    len_a, len_b = student_map.shape
    width = 4.2 * len(panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 4.0 * max(0.5, min(2.0, len_a / max(len_b, 1))) + 0.6),
                             squeeze=False)
    extent = (0.5, len_b + 0.5, len_a + 0.5, 0.5)  # residue numbers, 1-based, on both axes
    for ax, (name, values) in zip(axes[0], panels):
        values = np.asarray(values, dtype=np.float32)
        top = float(values.max()) if values.size else 1.0
        # each panel on its own scale from 0: a calibrated student map is far below 1 almost everywhere
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=max(top, 1e-6), extent=extent, aspect="auto",
                          interpolation="nearest")
        ax.set_title(f"{name} (max {top:.3g})")
        ax.set_xlabel(f"{id_b} residue")
        ax.set_ylabel(f"{id_a} residue")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    title = f"{id_a} x {id_b}" + (f"   p(interact) = {probability:.3f}" if probability is not None else "")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
