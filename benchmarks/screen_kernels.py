"""Why the block scorer computes its statistics the way it does (student/screening/score.py), measured side by side
in one process: G cells/s of the elementwise steps of the log-mean-exp, and of a whole coarse block's statistics
computed at once or in cache-sized slices.

- `exp` of ordinary shifted logits (in [-5, 0]) against `exp` of padded cells (about -10^4, whose result
  underflows to zero), and `exp2` of both after the clamp the scorer applies;
- `BlockScorer.block_statistics` of one coarse-sized block (48 x 48 proteins of 86 windows, an UNTRAINED student of
  the default architecture: the cost does not depend on the weights) with `chunk_cells=None` (one product per
  block) and with the default slices.

    python -m benchmarks.screen_kernels --threads 2 --json bench_out/screen_kernels.json
"""
from __future__ import annotations

import argparse

from benchmarks.common import median_seconds, write_result


def rate(function, cells: int, repeats: int) -> float:
    """G cells/s at the median of `repeats` timed calls after one warm-up call."""
    return round(cells / median_seconds(function, repeats=repeats) / 1e9, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", help="write the result here (benchmarks.common.write_result)")
    args = parser.parse_args()
    import torch

    from student.config import ModelConfig
    from student.model import MASKED_LOGIT, StudentModel
    from student.screening.score import CHUNK_CELLS, EXP_FLOOR, LOG2E, BlockScorer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cells = 2 ** 20
    ordinary = -5 * torch.rand(cells)
    padded = MASKED_LOGIT - 100 * torch.rand(cells)
    out = torch.empty(cells)
    steps = {
        "exp, ordinary cells": lambda: torch.exp(ordinary, out=out),
        "exp, padded cells": lambda: torch.exp(padded, out=out),
        "clamp + exp2, ordinary cells": lambda: out.copy_(ordinary).mul_(LOG2E).clamp_(min=EXP_FLOOR * LOG2E).exp2_(),
        "clamp + exp2, padded cells": lambda: out.copy_(padded).mul_(LOG2E).clamp_(min=EXP_FLOOR * LOG2E).exp2_(),
    }
    result: dict = {"threads": args.threads, "elementwise_g_cells_per_s": {}, "block_g_cells_per_s": {}}
    for name, step in steps.items():
        result["elementwise_g_cells_per_s"][name] = rate(step, cells, args.repeats)

    model = StudentModel(ModelConfig()).eval()
    n, windows, dim = 48, 86, model.config.feature_dim
    feat = torch.rand(n, windows, dim)
    mask = torch.ones(n, windows, dtype=torch.bool)
    mask[n // 2:, windows - 10:] = False  # some padding, as a length group has
    block_cells = n * windows * n * windows
    for name, chunk in (("whole block", None), (f"slices of {CHUNK_CELLS} cells", CHUNK_CELLS)):
        scorer = BlockScorer(model, chunk_cells=chunk)
        with torch.no_grad():
            result["block_g_cells_per_s"][name] = rate(
                lambda: scorer.block_statistics(feat.clone(), mask, feat.clone(), mask, 1), block_cells, args.repeats)
    print(result)
    if args.json:
        write_result(args.json, result)


if __name__ == "__main__":
    main()
