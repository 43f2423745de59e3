"""Caches and checkpoints written by earlier code (tests/data/README.md) load and give the values they gave then."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data.pairs import Pair
from student.checkpoint import load_checkpoint
from student.inference import predict_pairs
from teacher_cache import TeacherCache

DATA = Path(__file__).with_name("data")
EXPECTED = json.loads((DATA / "legacy_expected.json").read_text())


def test_a_cache_written_before_reads_the_same_maps_and_embeddings():
    with TeacherCache.open(DATA / "legacy_cache_v1.h5") as cache:
        assert cache.fingerprint == EXPECTED["fingerprint"]
        for entry in EXPECTED["pairs"]:
            maps = cache.pair(entry["seq_a"], entry["seq_b"])
            np.testing.assert_array_equal(maps.contact, np.array(entry["contact"], dtype=np.float32))
            np.testing.assert_array_equal(maps.attention, np.array(entry["attention"], dtype=np.float32))
            np.testing.assert_array_equal(cache.pair(entry["seq_b"], entry["seq_a"]).contact, maps.contact.T)
        for sequence, embedding in EXPECTED["proteins"].items():
            np.testing.assert_array_equal(cache.protein(sequence).embedding, np.array(embedding, dtype=np.float32))


def test_a_checkpoint_written_before_predicts_what_it_predicted_then():
    model, checkpoint = load_checkpoint(DATA / "legacy_student.pt")
    expected = EXPECTED["student"]
    assert float(checkpoint["threshold"]) == expected["threshold"]
    pairs = [Pair("a", "b", seq_a, seq_b) for seq_a, seq_b in expected["pairs"]]
    probs, maps = predict_pairs(model, pairs, return_maps=True)
    np.testing.assert_allclose(probs, expected["probabilities"], rtol=0, atol=1e-6)
    for got, want in zip(maps, expected["maps"]):
        np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-6)
