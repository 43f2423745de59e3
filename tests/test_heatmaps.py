"""Heatmaps say what they show: one colour scale per figure with a labelled bar, the teacher panel named for the
teacher, and a student of a random-weight teacher marked as such in plots and predictions."""
from __future__ import annotations

import numpy as np

from data.pairs import Pair
from student.plots import plot_pair_maps, teacher_panel_name
from student.predict import RANDOM_TEACHER_NOTE, random_teacher_note, write_predictions


def test_teacher_panels_are_named_for_the_teacher():
    assert teacher_panel_name({"teacher": "synthetic"}, "contact") == "planted contacts (oracle)"
    assert teacher_panel_name({"teacher": "structure"}, "contact") == "structure contacts (contact)"
    random = {"teacher": "esm2", "model": "/x/esm2_t6_random.pt", "random_weights": True}
    assert teacher_panel_name(random, "attention") == "random-weight ESM-2 esm2_t6_random.pt: attention"
    real = {"teacher": "esm2", "model": "esm2_t33_650M_UR50D", "random_weights": False}
    assert teacher_panel_name(real, "contact") == "esm2_t33_650M_UR50D: contact"


def test_one_colour_scale_and_a_labelled_bar(tmp_path, monkeypatch):
    import student.plots as plots

    seen = {}
    real_save = plots.save_figure

    def capture(fig, path, dpi):
        images = [ax.images[0] for ax in fig.axes if ax.images]
        seen["limits"] = {image.get_clim() for image in images}
        seen["bars"] = [ax.get_ylabel() for ax in fig.axes if not ax.images]
        seen["title"] = fig._suptitle.get_text()
        return real_save(fig, path, dpi)

    monkeypatch.setattr(plots, "save_figure", capture)
    student, teacher = np.full((5, 4), 0.1, np.float32), np.zeros((5, 4), np.float32)
    teacher[2, 1] = 0.9
    plot_pair_maps(tmp_path / "m.png", student, teacher, "A", "B", 0.5, "planted contacts (oracle)", "note here")
    assert seen["limits"] == {(0.0, np.float32(0.9))}  # both panels on the figure's one scale
    assert seen["bars"] == ["contact probability (map cell)"]
    assert seen["title"].endswith("note here") and (tmp_path / "m.png").stat().st_size > 0


def test_a_random_teacher_student_says_so_in_its_predictions(tmp_path):
    assert random_teacher_note({"train_config": {"teacher_random_weights": True}}) == RANDOM_TEACHER_NOTE
    assert random_teacher_note({"train_config": {"teacher_random_weights": False}}) == ""
    assert random_teacher_note({}) == ""
    pairs = [Pair("a", "b", "MKT", "GLV", 1)]
    write_predictions(tmp_path / "p.tsv", pairs, np.array([0.7]), 0.5, notes=[RANDOM_TEACHER_NOTE])
    lines = (tmp_path / "p.tsv").read_text().splitlines()
    assert lines[0] == f"# {RANDOM_TEACHER_NOTE}" and lines[1].startswith("id_a\tid_b\tprobability")
