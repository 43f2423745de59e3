"""The newcomer path: `cli.py demo` runs every stage end to end (tiny settings here; README uses the defaults)."""
from click.testing import CliRunner

from cli import cli
from teacher_cache import TeacherCache


def test_demo_runs_every_stage_and_says_the_esm_teacher_is_random(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--n-pairs", "60", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "RANDOM-WEIGHT ESM-2" in result.output
    assert "AUPR" in result.output and "heatmap:" in result.output
    for name in ("synth/cache.h5", "random_esm2_cache.h5", "run/best.pt", "run/metrics.json", "predictions.tsv"):
        assert (out / name).exists(), name
    assert list((out / "plots").glob("*.png"))
    with TeacherCache.open(out / "random_esm2_cache.h5") as cache:
        assert cache.random_weights and cache.n_pairs == 8

    again = CliRunner().invoke(cli, ["demo", "--out", str(out), "--n-pairs", "60", "--epochs", "1"])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_the_readmes_python_api_runs_on_the_demos_outputs(tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    block = re.search(r"## Python API.*?```python\n(.*?)```", (root / "README.md").read_text(), re.S).group(1)
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo_out"), "--n-pairs", "40",
                                      "--epochs", "1"])
    assert result.exit_code == 0, result.output
    ran = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stderr
    probability, decision, shape = ran.stdout.split(" ", 2)
    assert 0.0 <= float(probability) <= 1.0 and decision in ("True", "False") and shape.startswith("(")
