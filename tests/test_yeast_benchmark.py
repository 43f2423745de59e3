"""benchmarks/yeast.py, the real experiment in one command, on a tiny generated stand-in for D-SCRIPT's yeast data
(same file formats) and a random-weight ESM-2 cache of part of its pairs (a random teacher): with --cache it trains
CE only, CE + map and CE + map + sem beside the baselines on the same splits, every row names the random teacher,
pairs the cache lacks are left out of every part, and rows of the old student stay beside the new ones."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.common import student_code
from benchmarks.yeast import OLD_STUDENT
from data.fasta import write_fasta
from data.pairs import Pair, write_pairs
from tests.helpers import random_sequence

ROOT = Path(__file__).resolve().parent.parent
OLD_HEADER = ("dataset,split,negatives,model,n_train,seed,aupr,auroc,chance_aupr,n_test,train_pairs,epochs,seconds,"
              "machine,note")


@pytest.fixture(scope="module")
def yeast_like(tmp_path_factory):
    """A D-SCRIPT-format folder (headerless pairs.tsv, seqs.fasta) and a random-ESM-2 cache of 80% of its pairs."""
    from teacher_cache.teachers.config import PrecomputeConfig
    from teacher_cache.teachers.esm_runner import write_random_esm2
    from teacher_cache.teachers.precompute import run_precompute

    root = tmp_path_factory.mktemp("yeast")
    rng = np.random.default_rng(5)
    sequences = {f"Y{i:03d}": random_sequence(rng, int(rng.integers(20, 40))) for i in range(48)}
    names = sorted(sequences)
    chosen = rng.choice(len(names) * (len(names) - 1) // 2, size=360, replace=False)
    all_pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    rows = [(*all_pairs[k], int(j < 90)) for j, k in enumerate(chosen)]
    data = root / "data"
    data.mkdir()
    write_fasta(data / "seqs.fasta", sequences)
    (data / "pairs.tsv").write_text("".join(f"{a}\t{b}\t{label}\n" for a, b, label in rows))
    cached = [Pair(a, b, sequences[a], sequences[b], label) for a, b, label in rows[: int(0.8 * len(rows))]]
    write_pairs(root / "cached_pairs.tsv", cached)
    model = write_random_esm2(root / "model", num_layers=2, embed_dim=32, attention_heads=4)
    run_precompute(PrecomputeConfig(pairs=str(root / "cached_pairs.tsv"), fasta=str(data / "seqs.fasta"),
                                    model=str(model), out=str(root / "cache.h5"), device="cpu"))
    return {"root": root, "data": data, "cache": root / "cache.h5"}


def _run(yeast_like, csv_path: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmarks.yeast", "--data", str(yeast_like["data"]),
               "--work", str(yeast_like["root"] / "work"), "--csv", str(csv_path),
               "--settings", "protein/published", "--student-settings", "protein/published", "--n-train", "all",
               "--seeds", "0", "--student-n-train", "all", "--student-seeds", "0", "--student-epochs", "1",
               "--valid-frac", "0.25", "--test-frac", "0.25", *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_one_command_runs_the_distilled_students_beside_the_baselines(yeast_like, tmp_path):
    results = tmp_path / "yeast.csv"
    old_row = ("dscript-yeast,protein,published,student_ce,all,0,0.3947,0.8449,0.0846,2318,18851,3 (best 3),1290,"
               "x86_64 2-core CPU,CE only")
    results.write_text(OLD_HEADER + "\n" + old_row + "\n")
    output = _run(yeast_like, results, "--cache", str(yeast_like["cache"])).stdout
    rows = _rows(results)
    old = [r for r in rows if r["student_code"] == OLD_STUDENT]
    assert len(old) == 1 and old[0]["aupr"] == "0.3947" and old[0]["teacher"] == ""
    new = [r for r in rows if r["student_code"] != OLD_STUDENT]
    students = {r["model"]: r for r in new if r["model"].startswith("student")}
    assert set(students) == {"student_ce", "student_ce_map", "student_ce_map_sem"}
    assert {r["model"] for r in new} - set(students) == {"degree", "degree_max", "protein_composition",
                                                          "pair_composition"}
    for row in new:  # every figure of this run names its teacher as a random one, and the pairs it ran on
        assert "(random teacher)" in row["teacher"], row
        assert "restricted to the" in row["note"] and "pairs that cache.h5 holds" in row["note"], row
        assert 0.0 <= float(row["aupr"]) <= 1.0
    assert {r["student_code"] for r in students.values()} == {student_code()}
    assert "CE only" in students["student_ce"]["note"] and "semantic" in students["student_ce_map_sem"]["note"]
    assert "x map" in students["student_ce_map"]["note"] and "semantic" not in students["student_ce_map"]["note"]
    # baselines and students scored the same (restricted) test part
    assert len({r["n_test"] for r in new}) == 1 and len({r["train_pairs"] for r in new}) == 1
    kept, total = (int(x) for x in new[0]["note"].split("restricted to the ")[1].split(" pairs")[0].split(" of "))
    assert kept < total
    assert "random teacher" in output
    # a re-run skips what is done
    again = _run(yeast_like, results, "--cache", str(yeast_like["cache"]), "--no-baselines").stdout
    assert "protein/published n_train" not in again and len(_rows(results)) == len(rows)
    assert "student_ce (old)" in again  # the summary keeps the old student apart


def test_without_a_cache_only_the_label_student_runs(yeast_like, tmp_path):
    results = tmp_path / "yeast.csv"
    _run(yeast_like, results)
    rows = _rows(results)
    assert {r["model"] for r in rows if r["model"].startswith("student")} == {"student_ce"}
    assert all(r["teacher"] == "" and "restricted" not in r["note"] for r in rows)
