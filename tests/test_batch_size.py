"""--tokens-per-batch auto: the memory estimate against a measured peak, the fitting rule, and the run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from data.errors import UserError
from teacher_cache.teachers.batch_size import fit_tokens_per_batch, input_bytes
from teacher_cache.teachers.config import parse_tokens_per_batch

ROOT = Path(__file__).resolve().parents[1]

# Peak resident memory growth (bytes) of one pair_maps call of a T-token input, in a fresh process (glibc's default
# allocator returns large blocks, so VmHWM after a reset measures this call alone).
PROBE = """
import sys
sys.path.insert(0, {root!r})
import numpy as np, torch
torch.set_num_threads(1)
from teacher_cache.teachers.esm_runner import load_teacher
teacher = load_teacher({model!r})
rng = np.random.default_rng(0)
residues = np.array(list("LAGVSERTIDPKQNFYMHWC"))
a, b = "".join(rng.choice(residues, {la})), "".join(rng.choice(residues, {lb}))
teacher.pair_maps([("MKV", "MKV")], "GG", [-1])  # warm-up: first-call allocations are not the pass's
def field(name):
    return int(next(l for l in open("/proc/self/status") if l.startswith(name)).split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")
before = field("VmRSS:")
teacher.pair_maps([(a, b)], "GG", [-1])
print(field("VmHWM:") - before)
"""


def test_parse_tokens_per_batch():
    assert parse_tokens_per_batch("auto") == 0
    assert parse_tokens_per_batch("2048") == 2048
    for bad in ("0", "-5", "lots"):
        with pytest.raises(UserError, match="--tokens-per-batch"):
            parse_tokens_per_batch(bad)


def test_fit_keeps_every_batch_of_length_sorted_inputs_within_budget():
    heads, dim, longest = 20, 480, 1000
    budget = 4 * input_bytes(longest, heads, dim)
    tokens = fit_tokens_per_batch(longest, heads, dim, budget)
    assert 4 * longest <= tokens < 5 * longest
    for length in (50, 200, 600, longest):  # fair-esm's rule: batch size = tokens // length
        assert (tokens // length) * input_bytes(length, heads, dim) <= budget


def test_fit_never_goes_below_one_longest_input():
    assert fit_tokens_per_batch(1000, 20, 480, budget_bytes=10) == 1000


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc/self/clear_refs")
def test_estimate_bounds_the_measured_peak_of_a_pair_pass(tmp_path):
    from teacher_cache.teachers.esm_runner import write_random_esm2

    model = write_random_esm2(tmp_path, num_layers=2, embed_dim=32, attention_heads=8)
    la, lb = 700, 600
    tokens = la + 2 + lb + 2  # BOS + A + "GG" + B + EOS
    measured = int(subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), model=str(model), la=la,
                                                                       lb=lb)],
                                  capture_output=True, text=True, check=True).stdout.split()[-1])
    estimate = input_bytes(tokens, 8, 32)
    assert measured <= estimate  # an upper bound, so fitted batches do not run out of memory
    assert measured >= estimate / 3  # and not so loose that batches are needlessly small


def test_auto_runs_and_reports_its_choice(tmp_path):
    from teacher_cache.teachers.config import PrecomputeConfig
    from teacher_cache.teachers.precompute import run_precompute
    from teacher_cache.teachers.esm_runner import write_random_esm2

    checkpoint = write_random_esm2(tmp_path / "model")
    fasta, pairs = tmp_path / "s.fasta", tmp_path / "p.tsv"
    fasta.write_text(">a\nMKVLAAGG\n>b\nPLLQWERT\n>c\nMKWVTFIS\n")
    pairs.write_text("id_a\tid_b\tlabel\na\tb\t1\nb\tc\t0\n")
    result = run_precompute(PrecomputeConfig(pairs=str(pairs), fasta=str(fasta), model=str(checkpoint),
                                             out=str(tmp_path / "t.h5"), tokens_per_batch=0))
    longest = 8 + 25 + 8 + 2
    assert result.tokens_per_batch >= longest
    assert result.pairs_computed == 2 and result.proteins_computed == 3
