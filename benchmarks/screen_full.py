"""The whole all-vs-all, as a user runs it: `cli.py screen` on every protein of a FASTA (default: the 5,664 of
../shared/data/dscript-yeast), in a child process, with its wall time, pairs/s, CPU and kernel time, minor page
faults and peak memory (the child's rusage).

Several settings run one after the other in one invocation, so their figures are side by side on the same machine
state: `--variant LABEL=OPTIONS` (repeatable; more `screen` options, e.g. 'fp32=' or 'bf16=--coarse-precision
bfloat16'), and `--before DIR` adds a run of the same default options from another checkout (e.g.
`git worktree add /tmp/before <commit>`), the code before a change. `--keep DIR` keeps every run's hits TSV
there; `--truth LABEL` names the run whose rows are the reference (an `--exact` variant: every pair scored
exactly) and adds each other run's recall of its top-1,000 and top-10,000.

The checkpoint is any trained student; the figures in docs/screening.md used the one that
`python -m benchmarks.screen_quality --work DIR` trains (DIR/student/best.pt), so speed and recall belong to a
real-data student. Only one screen runs at a time here: a run beside other jobs says so in its load average.

    python -m benchmarks.screen_full --checkpoint /tmp/sq-new/student/best.pt --json docs/results/screen_full.json
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA, load_average, peak_rss_mb, write_result
from benchmarks.screen_quality import read_ids, recall
from data.fasta import read_fasta


def run_screen(code: Path, checkpoint: str, fasta: str, out: Path, top: int, threads: int,
               options: list[str]) -> dict:
    """One `screen` in a child process: its command, rows and rusage figures."""
    command = [sys.executable, str(code / "cli.py"), "screen", "--checkpoint", checkpoint, "--fasta", fasta,
               "--out", str(out), "--top", str(top), "--threads", str(threads), "--device", "cpu", "--overwrite",
               *options]
    load_start = load_average()
    started = time.perf_counter()
    with open(out.with_name(out.name + ".stderr"), "w+", encoding="utf-8") as log:  # a file: a full pipe blocks
        process = subprocess.Popen(command, cwd=code, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            sys.exit(f"screen failed:\n{log.read()[-4000:]}")
    return {"code": str(code), "command": " ".join(command[1:]), "rows": len(out.read_text().splitlines()) - 1,
            "wall_seconds": round(wall, 1), "user_seconds": round(usage.ru_utime, 1),
            "system_seconds": round(usage.ru_stime, 1), "minor_faults": usage.ru_minflt,
            "peak_rss_mb": round(peak_rss_mb(usage)), "load_average_1min": {"start": load_start,
                                                                            "end": load_average()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="trained student (best.pt)")
    parser.add_argument("--fasta", default=str(SHARED_DATA / "dscript-yeast" / "seqs.fasta"))
    parser.add_argument("--top", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[],
                        help="LABEL=OPTIONS: one run of this checkout with these extra `screen` options (repeatable; "
                             "default: one run 'default=')")
    parser.add_argument("--before", help="another checkout: one run 'before' of its cli.py, default options")
    parser.add_argument("--truth", help="LABEL of the run whose rows are the reference for recall (an --exact run)")
    parser.add_argument("--keep", help="keep every run's hits TSV in this folder")
    parser.add_argument("--json", help="write the result here (benchmarks.common.write_result)")
    args = parser.parse_args()
    runs: list[tuple[str, Path, list[str]]] = []
    if args.before:
        runs.append(("before", Path(args.before).resolve(), []))
    for spec in args.variant or ["default="]:
        label, _, options = spec.partition("=")
        runs.append((label, ROOT, options.split()))
    labels = [label for label, _, _ in runs]
    if len(set(labels)) != len(labels) or (args.truth and args.truth not in labels):
        sys.exit(f"run labels must be distinct and --truth one of them: {labels}")
    n = len(set(read_fasta(args.fasta).values()))
    pairs = n * (n + 1) // 2  # distinct sequences, self pairs included (screen's default)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for label, code, options in runs:
            out = folder / f"{label}.tsv"
            entry = run_screen(code, args.checkpoint, args.fasta, out, args.top, args.threads, options)
            entry["pairs_per_s"] = round(pairs / entry["wall_seconds"])
            results[label] = entry
            print(label, entry, flush=True)
        if args.truth:
            truth = read_ids(folder / f"{args.truth}.tsv")
            for label in labels:
                found = read_ids(folder / f"{label}.tsv")
                results[label].update({f"recall_top{k}_vs_{args.truth}": recall(found, truth, k)
                                       for k in (1000, 10000)})
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    result = {"proteins": n, "pairs": pairs, "order": labels, "runs": results}
    if args.json:
        write_result(args.json, result)


if __name__ == "__main__":
    main()
