"""Screening speed and memory on a real proteome, and the recall of the coarse pass.

Speed does not depend on training, so the speed part uses an UNTRAINED student of the default architecture
(`ModelConfig()`: channels 128,128, head `both`; and the same backbone with head `map`), seed 0. It measures, on the
FASTA given (default: all 5,664 proteins of ../shared/data/dscript-yeast):
  - encoding: every protein once, proteins/s and seconds;
  - per head and mode (exact; coarse = window-max-pooled pass + exact re-scoring of the selected fraction):
    pairs/s on a sample of blocks spread over the whole block list, against `student.inference.predict_pairs` on
    a sample of the same blocks' pairs in its own batches (`screen_vs_predict`);
  - the projected wall time for every pair of the FASTA, and for 200M pairs (a human-scale proteome with the same
    length distribution; human proteins are longer: median ~415 vs yeast 314, so treat that as a lower bound);
  - peak memory (max RSS) of a separate process that does what a full run does: encodes every protein into the
    in-memory store, scores sampled blocks, writes the top 10,000 rows.
Recall (needs a trained checkpoint, e.g. a student trained on `cli.py synth` data; an untrained one makes the
figure meaningless): on all pairs among the first --recall-proteins proteins of --recall-fasta, the share of the
exact top-1000 that the coarse mode reports in its top 1000, per re-score fraction.

    python -m benchmarks.screen --json screen.json --recall-checkpoint run/best.pt --recall-fasta synth/seqs.fasta
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, SHARED_DATA, load_average, machine, module_command, peak_rss_mb, write_result
from data.fasta import read_fasta, write_fasta
from data.pairs import Pair
from student.checkpoint import save_checkpoint
from student.config import ModelConfig
from student.inference import predict_pairs
from student.model import StudentModel
from student.screening.screen import ScreenConfig, Screener, run_screen

YEAST = SHARED_DATA / "dscript-yeast" / "seqs.fasta"
HUMAN_PAIRS = 200_000_000


def untrained_checkpoint(path: Path, head: str) -> Path:
    torch.manual_seed(0)
    model = StudentModel(ModelConfig(head=head))
    save_checkpoint(path, {"model": model.state_dict(), "model_config": model.config.to_dict(),
                           "note": "untrained (random init, seed 0): for speed measurements only"})
    return path


def make_screen(checkpoint: Path, fasta: str, out: Path, exact: bool) -> Screener:
    config = ScreenConfig(checkpoint=str(checkpoint), fasta=fasta, out=str(out), exact=exact, exact_below=0)
    screen = Screener(config, None, None)
    screen.setup()
    screen.state_dir.mkdir(parents=True, exist_ok=True)
    screen.make_features()
    return screen


def spread(items: list, count: int) -> list:
    index = np.unique(np.linspace(0, len(items) - 1, min(count, len(items))).astype(int))
    return [items[i] for i in index]


def time_blocks(screen: Screener, blocks: list) -> dict:
    seconds = cpu = 0.0
    pairs = cells = exact = 0
    for block in blocks:
        start, start_cpu = time.perf_counter(), time.process_time()
        _, n_exact = screen.score_block(block)
        seconds += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        pairs += block.pairs
        cells += block.cells
        exact += n_exact
    all_cells = sum(b.cells for b in screen.blocks)
    return {"blocks_sampled": len(blocks), "blocks_total": len(screen.blocks), "pairs_sampled": pairs,
            "seconds": round(seconds, 3), "pairs_per_s": round(pairs / seconds, 1),
            "share_rescored_exactly": round(exact / pairs, 5),
            "projected_scoring_s": round(seconds / cells * all_cells, 1),
            # CPU seconds / threads: what the wall time would be with the threads' cores to ourselves
            "cpu_seconds": round(cpu, 3), "projected_scoring_cpu_s": round(cpu / cells * all_cells, 1)}


def time_predict(screen: Screener, blocks: list, max_pairs: int, rng: np.random.Generator) -> dict:
    plan = screen.plan
    pairs = []
    for block in blocks:
        local_r, local_c = plan.block_pairs(block)
        for i, j in zip((local_r + block.rows[0]).tolist(), (local_c + block.cols[0]).tolist()):
            pairs.append(Pair(plan.set_a.ids[i][0], plan.set_b.ids[j][0], plan.set_a.sequences[i],
                              plan.set_b.sequences[j]))
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in np.sort(rng.choice(len(pairs), max_pairs, replace=False))]
    start = time.perf_counter()
    predict_pairs(screen.model, pairs)
    seconds = time.perf_counter() - start
    return {"pairs": len(pairs), "seconds": round(seconds, 3), "pairs_per_s": round(len(pairs) / seconds, 1)}


def speed(fasta: str, work: Path, n_blocks: int, max_predict: int) -> dict:
    out: dict = {}
    rng = np.random.default_rng(0)
    shared_features = None
    encode = None
    for head in ("both", "map"):
        checkpoint = untrained_checkpoint(work / f"untrained-{head}.pt", head)
        coarse = make_screen(checkpoint, fasta, work / f"coarse-{head}.tsv", exact=False)
        exact = make_screen(checkpoint, fasta, work / f"exact-{head}.tsv", exact=True)
        if shared_features is None:  # same seed, same backbone: encode once for both heads
            everything = np.arange(len(coarse.set_a))
            start, start_cpu = time.perf_counter(), time.process_time()
            coarse.encode(everything, everything)
            seconds = time.perf_counter() - start
            encode = {"proteins": len(everything), "residues": int(coarse.set_a.lengths.sum()),
                      "seconds": round(seconds, 2), "proteins_per_s": round(len(everything) / seconds, 1),
                      "cpu_seconds": round(time.process_time() - start_cpu, 2)}
            shared_features = coarse.features_a
            backbone = {k: v for k, v in coarse.model.state_dict().items() if k.startswith(("embedding", "convs", "norms"))}
        else:
            for name, value in exact.model.state_dict().items():
                if name in backbone:
                    assert torch.equal(value, backbone[name]), "heads must share the backbone"
        coarse.features_a = coarse.features_b = shared_features
        exact.features_a = exact.features_b = shared_features
        start, start_cpu = time.perf_counter(), time.process_time()
        coarse.config.coarse_threshold = coarse.calibrate_coarse_threshold()
        threshold_s = time.perf_counter() - start
        threshold_cpu = time.process_time() - start_cpu
        result: dict = {}
        for mode, screen in (("exact", exact), ("coarse", coarse)):
            blocks = spread(screen.blocks, n_blocks)
            with torch.inference_mode():
                entry = time_blocks(screen, blocks)
                entry["predict"] = time_predict(screen, blocks, max_pairs=max_predict, rng=rng)
            entry["screen_vs_predict"] = round(entry["pairs_per_s"] / entry["predict"]["pairs_per_s"], 2)
            extra = threshold_s if mode == "coarse" else 0.0
            entry["projected_all_pairs_s"] = round(encode["seconds"] + extra + entry["projected_scoring_s"], 1)
            entry["projected_all_pairs_h"] = round(entry["projected_all_pairs_s"] / 3600, 2)
            threads = torch.get_num_threads()
            cpu_total = (encode["cpu_seconds"] + (threshold_cpu if mode == "coarse" else 0.0)
                         + entry["projected_scoring_cpu_s"])
            entry["projected_all_pairs_cpu_h"] = round(cpu_total / threads / 3600, 2)
            scale = HUMAN_PAIRS / screen.plan.total_pairs
            human_s = encode["seconds"] * 20000 / len(screen.set_a) + extra + entry["projected_scoring_s"] * scale
            entry["projected_200M_pairs_h"] = round(human_s / 3600, 2)
            if mode == "coarse":
                entry["threshold_seconds"] = round(threshold_s, 2)
            result[mode] = entry
        result["pairs_total"] = exact.plan.total_pairs
        out[head] = result
    out["encode"] = encode
    return out


def probe_memory(fasta: str, work: Path, n_blocks: int) -> dict:
    """Run in a fresh process: what a full run holds at its peak."""
    checkpoint = untrained_checkpoint(work / "probe.pt", "both")
    screen = make_screen(checkpoint, fasta, work / "probe.tsv", exact=False)
    everything = np.arange(len(screen.set_a))
    with torch.inference_mode():
        screen.encode(everything, everything)
        screen.config.coarse_threshold = screen.calibrate_coarse_threshold()
        kept = [screen.score_block(b)[0] for b in spread(screen.blocks, n_blocks)]
        records = np.concatenate(kept)
        records = records[np.argsort(-records["logit"])[:10000]]
        screen.final_rows(records)
    return {"max_rss_gb": round(peak_rss_mb() * 1024 / 1e6, 3),  # KiB / 1e6: the unit this field has always had
            "features_spilled": screen.spilled, "proteins": len(screen.set_a)}


def recall(checkpoint: str, fasta: str, n_proteins: int, fractions: list[float], work: Path, top: int,
           pools: tuple[str, ...] = ("max", "mean")) -> dict:
    records = read_fasta(fasta)
    subset = dict(list(records.items())[:n_proteins])
    path = work / "recall.fasta"
    write_fasta(path, subset)
    start = time.perf_counter()
    exact = run_screen(ScreenConfig(checkpoint=checkpoint, fasta=str(path), out=str(work / "recall-exact.tsv"),
                                    top=top, exact=True, overwrite=True))
    exact_s = time.perf_counter() - start
    truth = [tuple(line.split("\t")[:2]) for line in open(work / "recall-exact.tsv").read().splitlines()[1:]]
    out = {"checkpoint": checkpoint, "fasta": fasta, "proteins": len(subset), "pairs": exact.pairs_total,
           "top": top, "exact_seconds": round(exact_s, 1), "pools": {}}
    for pool in pools:
        entries = out["pools"].setdefault(pool, {})
        for fraction in fractions:
            start = time.perf_counter()
            coarse = run_screen(ScreenConfig(checkpoint=checkpoint, fasta=str(path),
                                             out=str(work / "recall-coarse.tsv"), top=top, exact_below=0,
                                             rescore_fraction=fraction, coarse_pool=pool, overwrite=True))
            seconds = time.perf_counter() - start
            found = {tuple(line.split("\t")[:2]) for line in open(work / "recall-coarse.tsv").read().splitlines()[1:]}
            entries[str(fraction)] = {"recall": round(len(found & set(truth)) / len(truth), 4),
                                      "pairs_rescored": coarse.pairs_exact, "seconds": round(seconds, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fasta", default=str(YEAST))
    parser.add_argument("--json", help="Write the results here.")
    parser.add_argument("--blocks", type=int, default=24, help="Blocks sampled per head and mode.")
    parser.add_argument("--max-predict", type=int, default=1500, help="Pairs timed through predict_pairs.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recall-checkpoint", help="Trained student for the recall measurement.")
    parser.add_argument("--recall-fasta", help="Proteins for the recall measurement.")
    parser.add_argument("--recall-proteins", type=int, default=1000)
    parser.add_argument("--recall-fractions", default="0.005,0.01,0.02")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # the memory subprocess
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="screen-bench-") as tmp:
        work = Path(tmp)
        if args.probe:
            print(json.dumps(probe_memory(args.fasta, work, args.blocks)))
            return
        result: dict = {"fasta": args.fasta, "model": "untrained default ModelConfig() (speed only), seed 0"}
        if not args.skip_speed:
            result["speed"] = speed(args.fasta, work, args.blocks, args.max_predict)
            probe = subprocess.run(module_command("screen", "--probe", "--fasta", Path(args.fasta).resolve(),
                                                  "--threads", args.threads, "--blocks", 8),
                                   capture_output=True, text=True, check=True, cwd=ROOT)
            result["memory"] = json.loads(probe.stdout.strip().splitlines()[-1])
        if args.recall_checkpoint and args.recall_fasta:
            fractions = [float(f) for f in args.recall_fractions.split(",")]
            result["recall"] = recall(args.recall_checkpoint, args.recall_fasta, args.recall_proteins, fractions,
                                      work, top=1000)
    print_table(result)
    if args.json:
        write_result(args.json, result)


def print_table(result: dict) -> None:
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}, load average {load_average()} (1 min)")
    if "speed" in result:
        encode = result["speed"]["encode"]
        print(f"encode: {encode['proteins']} proteins ({encode['residues']} residues) in {encode['seconds']} s "
              f"({encode['proteins_per_s']} proteins/s)")
        print(f"{'head':6} {'mode':7} {'pairs/s':>9} {'predict/s':>9} {'ratio':>6} {'rescored':>9} "
              f"{'all pairs h':>11} {'(cpu/threads)':>13} {'200M h':>8}")
        for head in ("both", "map"):
            for mode in ("exact", "coarse"):
                e = result["speed"][head][mode]
                print(f"{head:6} {mode:7} {e['pairs_per_s']:>9.0f} {e['predict']['pairs_per_s']:>9.0f} "
                      f"{e['screen_vs_predict']:>6.2f} {e['share_rescored_exactly']:>9.4f} "
                      f"{e['projected_all_pairs_h']:>11.2f} {e['projected_all_pairs_cpu_h']:>13.2f} "
                      f"{e['projected_200M_pairs_h']:>8.2f}")
        print(f"memory: {result['memory']}")
    if "recall" in result:
        r = result["recall"]
        print(f"recall of the exact top-{r['top']} ({r['proteins']} proteins, {r['pairs']} pairs, "
              f"{r['checkpoint']}):")
        for pool, entries in r["pools"].items():
            for fraction, entry in entries.items():
                print(f"  {pool}-pooled coarse pass, re-score fraction {fraction}: recall {entry['recall']:.4f} "
                      f"({entry['pairs_rescored']} pairs re-scored, {entry['seconds']} s)")


if __name__ == "__main__":
    main()
