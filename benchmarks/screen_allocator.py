"""`screen` with glibc's default allocator against freed memory kept in the heap (`data.allocator`, which
`cli.py screen` now applies, as precompute and train do), side by side in one run.

Each side runs in a child process of its own (the allocator setting is process-wide and permanent), in alternating
order over --rounds rounds, on the same checkpoint, FASTA and options; the parent reads each child's wall time,
user and system CPU time, minor page faults and peak RSS from `os.wait4`. Results do not depend on the setting
(the children's hits files are compared). Speed does not depend on training either, so without --checkpoint an
untrained student of the default architecture (seed 0) is used.

    python -m benchmarks.screen_allocator --proteins 2000 --rounds 2 --json benchmarks/out/screen_allocator.json
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA, load_average, module_command, peak_rss_mb, write_result

YEAST = SHARED_DATA / "dscript-yeast" / "seqs.fasta"
SIDES = ("glibc", "heap kept")


def child(args: argparse.Namespace) -> None:
    """One screen, as `cli.py screen` runs it except for the allocator setting."""
    from student.screening.screen import ScreenConfig, run_screen

    if args.keep_heap:
        from data.allocator import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("keeping freed memory needs glibc")
    run_screen(ScreenConfig(checkpoint=args.checkpoint, fasta=args.fasta, out=args.out, top=args.top,
                            threads=args.threads, device="cpu", overwrite=True))


def _inputs(args: argparse.Namespace, folder: Path) -> tuple[str, str]:
    from data.fasta import read_fasta, write_fasta

    fasta = args.fasta or str(YEAST)
    if args.proteins:
        records = dict(list(read_fasta(fasta).items())[:args.proteins])
        fasta = str(folder / "proteins.fasta")
        write_fasta(fasta, records)
    checkpoint = args.checkpoint
    if checkpoint is None:
        import torch

        from student.checkpoint import save_checkpoint
        from student.config import ModelConfig
        from student.model import StudentModel

        torch.manual_seed(0)
        model = StudentModel(ModelConfig())
        checkpoint = str(folder / "untrained.pt")
        save_checkpoint(checkpoint, {"model": model.state_dict(), "model_config": model.config.to_dict()})
    return fasta, checkpoint


def measure(side: str, fasta: str, checkpoint: str, out: Path, args: argparse.Namespace) -> dict:
    command = module_command("screen_allocator", "--child", "--fasta", fasta, "--checkpoint", checkpoint,
                             "--out", out, "--top", args.top, "--threads", args.threads)
    if side == "heap kept":
        command.append("--keep-heap")
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{side}: the screen failed:\n{process.stderr.read().decode()[-3000:]}")
    return {"side": side, "wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "minor_faults": usage.ru_minflt, "peak_rss_mb": peak_rss_mb(usage)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fasta", help="Proteome (default: the D-SCRIPT yeast FASTA beside the checkout).")
    parser.add_argument("--proteins", type=int, default=0, help="Only the first N proteins (0: all).")
    parser.add_argument("--checkpoint", help="Student checkpoint (default: untrained, default architecture).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="Write the results here.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep-heap", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        fasta, checkpoint = _inputs(args, folder)
        runs, load_before = [], load_average()
        for round_ in range(args.rounds):
            for side in (SIDES if round_ % 2 == 0 else SIDES[::-1]):
                run = measure(side, fasta, checkpoint, folder / f"{side.replace(' ', '_')}{round_}.tsv", args)
                run["round"] = round_
                runs.append(run)
                print(f"round {round_} {side:>9}: {run['wall_s']:7.1f} s wall, {run['sys_s']:6.1f} s sys, "
                      f"{run['minor_faults'] / 1e6:6.1f} M minor faults, {run['peak_rss_mb']:7.0f} MiB peak",
                      file=sys.stderr)
        hits = {p.read_text() for p in folder.glob("*.tsv")}
        if len(hits) != 1:
            raise SystemExit("the two allocator settings gave different hits: a bug")
    ratios = []
    for round_ in range(args.rounds):
        before, after = (next(r for r in runs if r["round"] == round_ and r["side"] == s) for s in SIDES)
        ratios.append({name: after[name] / before[name] if before[name] else None
                       for name in ("wall_s", "sys_s", "peak_rss_mb")})
    print("heap kept / glibc, per round: " + "; ".join(
        f"wall {r['wall_s']:.2f}x, sys {r['sys_s']:.2f}x, peak RSS {r['peak_rss_mb']:.2f}x" for r in ratios))
    if args.json:
        write_result(args.json, {"fasta": args.fasta or str(YEAST), "proteins": args.proteins or "all",
                                 "checkpoint": args.checkpoint or "untrained default architecture, seed 0",
                                 "top": args.top, "threads": args.threads, "runs": runs,
                                 "ratios_heap_kept_over_glibc": ratios, "load_before": load_before,
                                 "load_after": load_average(), "identical_hits": True})


if __name__ == "__main__":
    main()
