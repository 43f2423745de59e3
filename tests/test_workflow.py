"""The Snakemake workflow (workflow/Snakefile) end to end on one machine: the demo's planted data and a tiny
random-weight ESM-2 (a random teacher), `snakemake --cores 2`. Its final hits equal the verbs run by hand; a run
killed in the middle finishes when re-run, without redoing stage one; other student options re-run train and what
follows, never stage one. Slow (about a minute): .ci/run runs it on its own."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.synth import SynthConfig
from teacher_cache.teachers.esm_runner import write_random_esm2
from teacher_cache.teachers.synthetic import make_synthetic

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(SNAKEMAKE is None, reason='snakemake is not installed (pip install -e ".[workflow]")')]
CLI = f"{sys.executable} {ROOT / 'cli.py'}"
TRAIN_OPTIONS = "--epochs 2 --batch-size 16 --channels 8 --kernel-sizes 3 --embed-dim 8 --hidden 8 --device cpu"


def _config(tmp: Path, data: Path, model: Path, train_options: str = TRAIN_OPTIONS) -> Path:
    config = {
        "pairs": str(data / "pairs.tsv"), "fasta": str(data / "seqs.fasta"), "proteome": "",
        "out": str(tmp / "out"), "cli": CLI,
        "precompute": {"model": str(model), "shards": 2, "device": "cpu", "options": "--checkpoint-seconds 0"},
        "split": {"by": "protein", "options": "--valid-frac 0.2 --test-frac 0.2"},
        "train": {"options": train_options},
        "screen": {"shards": 2, "top": 40, "threads": 1, "options": "--device cpu"},
        "heatmaps": {"top": 2},
    }
    path = tmp / f"config-{abs(hash(train_options)) % 10**6}.json"  # snakemake reads JSON config files too
    path.write_text(json.dumps(config))
    return path


def _snakemake(tmp: Path, config: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--configfile", str(config), "--cores", "2",
               "--directory", str(tmp), "--rerun-incomplete", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if kwargs.pop("background", False):
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env)
    return subprocess.run(command, capture_output=True, text=True, env=env, **kwargs)


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workflow_inputs")
    make_synthetic(SynthConfig(n_pairs=48, families=2, motif_len=4, min_len=16, max_len=28, seed=3,
                               embedding_dim=8), folder / "synth")
    model = write_random_esm2(folder / "esm", num_layers=1, embed_dim=16, attention_heads=2)
    return folder / "synth", model


def test_workflow_runs_resumes_and_equals_the_verbs_by_hand(inputs, tmp_path):
    data, model = inputs
    config = _config(tmp_path, data, model)

    # 1. killed in the middle (once stage one is done), then run again to the end
    run = _snakemake(tmp_path, config, background=True)
    deadline = time.time() + 300
    while time.time() < deadline and run.poll() is None:
        if list((tmp_path / "out").glob("runs/*/logs/train.log")):
            break
        time.sleep(0.2)
    assert run.poll() is None, run.stdout.read().decode()
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not list((tmp_path / "out").glob("runs/*/metrics.json"))  # killed while training
    shards = sorted((tmp_path / "out").glob("cache-*/shard*-of-2.h5"))
    assert len(shards) == 2
    stage_one = {path: path.stat().st_mtime_ns for path in shards + list((tmp_path / "out").glob("cache-*/cache.h5"))}
    assert _snakemake(tmp_path, config, "--unlock").returncode == 0  # a killed snakemake leaves its lock behind
    done = _snakemake(tmp_path, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {path: path.stat().st_mtime_ns for path in stage_one} == stage_one  # stage one was not redone

    # 2. the final hits equal the verbs run by hand on the same checkpoint
    run_dir = next((tmp_path / "out" / "runs").iterdir())
    screen_dir = next(run_dir.glob("screen-*"))
    by_hand = tmp_path / "by_hand.tsv"
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "screen", "--checkpoint", str(run_dir / "best.pt"),
                    "--fasta", str(data / "seqs.fasta"), "--out", str(by_hand), "--top", "40", "--threads", "1",
                    "--device", "cpu"], check=True, capture_output=True)
    assert _rows(screen_dir / "hits.tsv") == _rows(by_hand)
    assert len(_rows(screen_dir / "hits.tsv")) == 41
    report = json.loads((run_dir / "evaluate.json").read_text())
    assert report["part"] == "test" and "pair_composition" in report["baselines"]
    assert len(list((screen_dir / "heatmaps").glob("*.png"))) == 2

    # 3. nothing left to do; other student options re-run train and what follows, never stage one
    again = _snakemake(tmp_path, config, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    other = _snakemake(tmp_path, _config(tmp_path, data, model, TRAIN_OPTIONS + " --lr 0.003"), "-n")
    planned = other.stdout + other.stderr
    assert other.returncode == 0, planned
    for rule in ("train", "evaluate", "screen_shard", "screen_merge", "heatmaps"):
        assert f"rule {rule}:" in planned or f"\n{rule} " in planned, (rule, planned)
    for rule in ("precompute_shard", "cache_merge"):
        assert f"rule {rule}:" not in planned, (rule, planned)
