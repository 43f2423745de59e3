"""`cli.py demo`: the whole pipeline on bundled data, in a few minutes on 2 CPU cores.

1. draw the planted-interface set (data.synth) with its oracle teacher cache;
2. run stage one (`precompute`) with a tiny RANDOM-weight ESM-2 on a few of its pairs, so that path runs too;
3. train the student on the oracle cache, evaluate it on the held-out test part beside the baselines;
4. predict the test pairs and draw heatmaps of the student's map beside the planted contacts.

This module orchestrates both stages, so it sits beside cli.py rather than inside `student/` (which never imports
the teacher runner) or `teacher_cache/`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from data.atomic import check_outputs
from data.fasta import read_fasta
from data.pairs import read_pairs, write_pairs

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    out: str = "demo_out"
    n_pairs: int = 600  # planted-interface pairs (train/valid/test split inside)
    epochs: int = 12
    teacher_pairs: int = 8  # pairs run through the random ESM-2 in stage one
    plots: int = 4
    seed: int = 0
    overwrite: bool = False


@dataclass
class DemoResult:
    out: str
    synth_dir: str
    esm_cache: str
    run_dir: str
    metrics: dict
    baselines: dict
    precompute: dict
    plots: list[str] = field(default_factory=list)


def run_demo(config: DemoConfig, progress: bool = False) -> DemoResult:
    from student.config import EvaluateConfig, ModelConfig, PredictConfig, TrainConfig
    from student.evaluation.evaluate import evaluate
    from student.predict import run_predict
    from student.trainer import SHORT_MAP_SCHEDULE, train
    from data.synth import SynthConfig
    from teacher_cache.teachers.config import PrecomputeConfig
    from teacher_cache.teachers.precompute import run_precompute
    from teacher_cache.teachers.esm_runner import write_random_esm2
    from teacher_cache.teachers.synthetic import make_synthetic

    out = Path(config.out)
    check_outputs({}, None, config.overwrite, folders={"--out": out},
                  hint="pass --overwrite to replace the demo there")
    out.mkdir(parents=True, exist_ok=True)

    # 1. planted-interface data with its oracle teacher
    synth_dir = out / "synth"
    synth = make_synthetic(SynthConfig(n_pairs=config.n_pairs, seed=config.seed), synth_dir,
                           overwrite=config.overwrite)
    log.info("1/4 planted-interface set: %s", synth_dir)

    # 2. stage one on a few pairs with a tiny random ESM-2 (exercises precompute; says nothing about biology)
    teacher_dir = out / "random_esm2"
    model_path = write_random_esm2(teacher_dir, num_layers=4, embed_dim=64, attention_heads=4, seed=config.seed,
                                   name="esm2_t4_demo_random")
    sequences = read_fasta(synth.fasta)
    some_pairs = read_pairs(synth.pairs, sequences).pairs[:config.teacher_pairs]
    teacher_pairs = out / "teacher_pairs.tsv"
    write_pairs(teacher_pairs, some_pairs)
    esm_cache = out / "random_esm2_cache.h5"
    pre = run_precompute(PrecomputeConfig(pairs=str(teacher_pairs), fasta=str(synth.fasta), model=str(model_path),
                                          out=str(esm_cache), overwrite=config.overwrite))
    log.info("2/4 stage one with a RANDOM-WEIGHT ESM-2 (no biological signal): %s", esm_cache)

    # 3. stage two on the oracle cache; then the held-out test part beside the baselines
    run_dir = out / "run"
    train(TrainConfig(pairs=str(synth.pairs), fasta=str(synth.fasta), cache=str(synth.cache), out=str(run_dir),
                      epochs=config.epochs, min_epochs=min(config.epochs, SHORT_MAP_SCHEDULE), seed=config.seed,
                      overwrite=config.overwrite, model=ModelConfig(head="map")), progress=progress)
    report = evaluate(EvaluateConfig(checkpoint=str(run_dir / "best.pt"), pairs=str(synth.pairs),
                                     fasta=str(synth.fasta), cache=str(synth.cache), split="test", baselines=True))
    log.info("3/4 trained and evaluated: %s", run_dir)

    # 4. predictions and heatmaps for the test part
    test_pairs = [p for p in read_pairs(synth.pairs, sequences).pairs if p.split == "test" and p.label == 1]
    predict_table = out / "predict_pairs.tsv"
    write_pairs(predict_table, test_pairs[:config.plots])
    predicted = run_predict(PredictConfig(checkpoint=str(run_dir / "best.pt"), pairs=str(predict_table),
                                          fasta=str(synth.fasta), out=str(out / "predictions.tsv"),
                                          plot=str(out / "plots"), plot_max=config.plots, cache=str(synth.cache),
                                          overwrite=config.overwrite))
    log.info("4/4 predictions and heatmaps: %s", out / "plots")
    return DemoResult(str(out), str(synth_dir), str(esm_cache), str(run_dir), report["student"],
                      report.get("baselines", {}), pre.to_dict(), list(predicted.get("plots", [])))
