"""The whole all-vs-all, as a user runs it: `cli.py screen` on every protein of a FASTA (default: the 5,664 of
../shared/data/dscript-yeast), in a child process, with its wall time, pairs/s, CPU and kernel time, minor page
faults and peak memory (the child's rusage).

The checkpoint is any trained student; the figures in docs/screening.md used the one that
`python -m benchmarks.screen_quality --work DIR` trains (DIR/student/best.pt), so speed and recall belong to a
real-data student. Only one screen runs at a time here: a run beside other jobs says so in its load average.

    python -m benchmarks.screen_full --checkpoint /tmp/sq-new/student/best.pt --json docs/results/screen_full.json
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA, load_average, peak_rss_mb, write_result
from data.fasta import read_fasta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="trained student (best.pt)")
    parser.add_argument("--fasta", default=str(SHARED_DATA / "dscript-yeast" / "seqs.fasta"))
    parser.add_argument("--top", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--options", default="", help="more `screen` options, e.g. '--exact'")
    parser.add_argument("--json", help="write the result here (benchmarks.common.write_result)")
    args = parser.parse_args()
    n = len(set(read_fasta(args.fasta).values()))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hits.tsv"
        command = [sys.executable, str(ROOT / "cli.py"), "screen", "--checkpoint", args.checkpoint, "--fasta",
                   args.fasta, "--out", str(out), "--top", str(args.top), "--threads", str(args.threads),
                   "--device", "cpu", *args.options.split()]
        load_start = load_average()
        started = time.perf_counter()
        with open(Path(tmp) / "stderr.txt", "w+", encoding="utf-8") as log:  # a file: a full pipe would block it
            process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                log.seek(0)
                sys.exit(f"screen failed:\n{log.read()[-4000:]}")
        rows = len(out.read_text().splitlines()) - 1
    pairs = n * (n + 1) // 2  # distinct sequences, self pairs included (screen's default)
    result = {"command": " ".join(command[1:]), "proteins": n, "pairs": pairs, "rows": rows,
              "wall_seconds": round(wall, 1), "pairs_per_s": round(pairs / wall),
              "user_seconds": round(usage.ru_utime, 1), "system_seconds": round(usage.ru_stime, 1),
              "minor_faults": usage.ru_minflt, "peak_rss_mb": round(peak_rss_mb(usage)),
              "load_average_1min": {"start": load_start, "end": load_average()}}
    print(result)
    if args.json:
        write_result(args.json, result)


if __name__ == "__main__":
    main()
