"""Scoring many pairs at once with a trained `StudentModel`, equal to `model.classify` on each pair.

`classify` computes one (La, Lb) map per pair with a batched matmul, then masks, scales and reduces it. Here a
block of row proteins (na, La, D) and column proteins (nb, Lb, D) becomes matrix products
(c * La, D + 2) @ (D + 2, nb * Lb) over slices of c row proteins, whose two extra columns fold in the map's scale,
bias and padding mask, so each product yields the calibrated, masked logits of c x nb maps. Each slice is small
enough (`CHUNK_CELLS`) to be reduced to the map statistics (max, top-k mean, log-mean-exp) while it is still in
the CPU cache, and the model's own head modules turn the statistics into logits. `tests/test_screen.py` checks
equality with `classify`, `map_statistics` and `predict_pairs`.

The coarse pass (`coarsen`) max-pools the features over windows of r residues, so the coarse map has 1/r^2 of
the cells and (features being non-negative) bounds each r x r window of the raw map from above. Its score only
ranks pairs for exact re-scoring, so its products may run in bfloat16 (`COARSE_DTYPES`; benchmarks/screen_quality.py
measures what that costs in recall).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from student.model import MASKED_LOGIT, StudentModel

# The log-mean-exp's exponentials are taken as exp2(x * log2(e)): on the project's CPU the multiply, clamp and exp2
# together run at about twice the rate of exp alone (benchmarks/screen_kernels.py).
LOG2E = 1.0 / math.log(2.0)
# exp() or exp2() with a denormal or zero float32 result is computed over 10x slower (benchmarks/screen_kernels.py);
# every padded cell (~MASKED_LOGIT) is such an argument. Clamping the shifted logits to EXP_FLOOR (in natural
# units) first adds at most exp(-80) = 1.8e-35 per cell to a sum that is at least 1 (the maximum's own cell),
# which float32 cannot represent: the statistics are unchanged.
EXP_FLOOR = -80.0
CHUNK_CELLS = 2 ** 19  # map cells reduced at once (2 MB of float32 logits: about what two cores' L2 caches hold)
COARSE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}  # the coarse pass's matrix products


def coarse_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the coarse products: `precision` itself, or for "auto" bfloat16 where the device has fast
    bfloat16 matrix products (CUDA that supports it; a CPU for which oneDNN reports bfloat16 support) and float32
    elsewhere."""
    if precision != "auto":
        return COARSE_DTYPES[precision]
    if device.type == "cuda":
        fast = torch.cuda.is_bf16_supported()
    else:
        try:
            fast = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a torch build without oneDNN
            fast = False
    return torch.bfloat16 if fast else torch.float32


class BlockScorer:
    """Exact and coarse pair logits from per-protein features (as `StudentModel.encode` returns them)."""

    def __init__(self, model: StudentModel, chunk_cells: int | None = CHUNK_CELLS):
        self.model = model
        self.chunk_cells = chunk_cells
        self.uses_map = model.uses_map
        self.topk = model.config.map_topk
        dim = model.config.feature_dim
        self.row_scale = (model.map_scale.detach() * dim ** -0.5).float()
        self.bias = model.map_bias.detach().float()

    # 1. calibrated, masked map logits ------------------------------------------------------------------------
    def augment(self, feat: torch.Tensor, mask: torch.Tensor, rows: bool) -> torch.Tensor:
        """(n, L, D) => (n, L, D + 2): rows [f * scale, 1, m], columns [f, bias + m, 1], m = 0 or MASKED_LOGIT,
        so that row . column = scale * <fa, fb> + bias + m_a + m_b. Features with two spare trailing columns
        (n, L, D + 2) are filled in place instead of copied."""
        pad = torch.where(mask, 0.0, MASKED_LOGIT).to(feat.dtype)  # (n, L)
        dim = self.model.config.feature_dim
        if feat.shape[-1] == dim:
            feat = torch.cat([feat, feat.new_zeros(feat.shape[:-1] + (2,))], dim=-1)
        if rows:
            feat[..., :dim] *= self.row_scale.to(feat.device)
            feat[..., dim], feat[..., dim + 1] = 1.0, pad
        else:
            feat[..., dim], feat[..., dim + 1] = pad + self.bias.to(feat.device), 1.0
        return feat

    def _slice(self, cells_each: int, n: int) -> int:
        """How many items of `cells_each` map cells one slice holds (all n without slicing)."""
        return max(1, self.chunk_cells // cells_each) if self.chunk_cells else n

    # 2. statistics and heads ---------------------------------------------------------------------------------
    def map_statistics(self, logits: torch.Tensor, n_valid: torch.Tensor, topk: int | None = None,
                       in_place: bool = False) -> torch.Tensor:
        """(max, top-k mean, log-mean-exp) of the valid cells of (n, La, m, Lb) logits: => (n, m, 3).

        The same statistics as `StudentModel.map_statistics`, with less work: the top-k cells of a map lie in
        its k rows with the largest maxima (a cell outside them has k larger cells above it), and the
        log-mean-exp reuses the maximum. Masked cells hold ~MASKED_LOGIT and never enter a statistic.
        in_place: the logits may be overwritten (saves a map-sized buffer)."""
        n, la, m, lb = logits.shape
        k = self.topk if topk is None else topk
        row_max = logits.amax(dim=3)  # (n, La, m)
        top_max = row_max.amax(dim=1)  # (n, m)
        if k == 1:  # the coarse pass's usual top-k: the mean of the best cell is the maximum
            top_mean = top_max
        else:
            best_rows = row_max.topk(min(k, la), dim=1).indices  # (n, kr, m)
            rows = logits.gather(1, best_rows[..., None].expand(-1, -1, -1, lb))  # (n, kr, m, Lb)
            rows = rows.permute(0, 2, 1, 3).reshape(n, m, -1)  # (n, kr, m, Lb) => (n, m, kr * Lb)
            top = rows.topk(min(k, rows.shape[2]), dim=2).values  # (n, m, k)
            keep = torch.arange(top.shape[2], device=top.device) < n_valid.clamp_max(k)[..., None]
            top_mean = (top * keep).sum(2) / keep.sum(2)
        shifted = logits.sub_(top_max[:, None, :, None]) if in_place else logits - top_max[:, None, :, None]
        sum_exp = shifted.mul_(LOG2E).clamp_(min=EXP_FLOOR * LOG2E).exp2_().sum(dim=(1, 3))  # (n, m)
        log_mean_exp = top_max + torch.log(sum_exp) - torch.log(n_valid.to(logits.dtype))
        return torch.stack([top_max, top_mean, log_mean_exp], dim=2)

    # 3. whole blocks and pair lists --------------------------------------------------------------------------
    @torch.no_grad()
    def score_block(self, feat_a: torch.Tensor | None, mask_a: torch.Tensor | None, pooled_a: torch.Tensor,
                    feat_b: torch.Tensor | None, mask_b: torch.Tensor | None, pooled_b: torch.Tensor,
                    rows: torch.Tensor, cols: torch.Tensor, topk: int | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Logits (P,) of the pairs (rows[p], cols[p]) of a block of row proteins (na, La, D) and column
        proteins (nb, Lb, D); pooled_* are their pooled features (`StudentModel.pool`). With coarse features pass
        the coarse top-k (and optionally the coarse dtype). The features head needs only the pooled features
        (feat_* and mask_* may be None)."""
        stats = None
        if self.uses_map:
            stats = self.block_statistics(feat_a, mask_a, feat_b, mask_b, topk, dtype)[rows, cols]  # => (P, 3)
        return self.model.head(pooled_a[rows], pooled_b[cols], stats)

    def block_statistics(self, feat_a: torch.Tensor, mask_a: torch.Tensor, feat_b: torch.Tensor,
                         mask_b: torch.Tensor, topk: int | None = None, dtype: torch.dtype = torch.float32
                         ) -> torch.Tensor:
        """Map statistics (na, nb, 3) of every (row, column) pair of a block, computed in slices of row proteins
        whose maps hold at most `chunk_cells` cells, so that each slice's logits are reduced while they are still
        in the CPU cache. dtype: of the matrix product (bfloat16 for a faster, approximate coarse pass; the
        statistics are always reduced in float32). Features with two spare columns (see `augment`) are
        overwritten."""
        na, la = feat_a.shape[:2]
        nb, lb = feat_b.shape[:2]
        rows = self.augment(feat_a, mask_a, True).to(dtype)  # (na, La, D+2)
        cols = self.augment(feat_b, mask_b, False).to(dtype).reshape(nb * lb, -1).T  # => (D+2, nb*Lb)
        n_valid = mask_a.sum(1)[:, None] * mask_b.sum(1)[None, :]  # (na, nb)
        step = self._slice(la * nb * lb, na)
        out = []
        for start in range(0, na, step):
            part = rows[start:start + step]
            logits = (part.reshape(-1, part.shape[-1]) @ cols).float().view(len(part), la, nb, lb)
            out.append(self.map_statistics(logits, n_valid[start:start + step], topk, in_place=True))
        return torch.cat(out)

    @torch.no_grad()
    def pair_logits(self, feat_a: torch.Tensor, mask_a: torch.Tensor, pooled_a: torch.Tensor,
                    feat_b: torch.Tensor, mask_b: torch.Tensor, pooled_b: torch.Tensor) -> torch.Tensor:
        """Logits (P,) of aligned pairs (P, La, D) x (P, Lb, D), their maps reduced in slices of at most
        `chunk_cells` cells (as `block_statistics`). Features with two spare columns are overwritten."""
        if not self.uses_map:
            return self.model.head(pooled_a, pooled_b, None)
        n, la = feat_a.shape[:2]
        lb = feat_b.shape[1]
        rows = self.augment(feat_a, mask_a, True)
        cols = self.augment(feat_b, mask_b, False)
        n_valid = (mask_a.sum(1) * mask_b.sum(1))[:, None]  # (P, 1)
        step = self._slice(la * lb, n)
        stats = []
        for start in range(0, n, step):
            logits = torch.bmm(rows[start:start + step], cols[start:start + step].transpose(1, 2))  # (p, La, Lb)
            stats.append(self.map_statistics(logits.unsqueeze(2), n_valid[start:start + step], in_place=True))
        return self.model.head(pooled_a, pooled_b, torch.cat(stats)[:, 0])  # (P, 1, 3) => (P, 3)

    @torch.no_grad()
    def locate_pairs(self, feat_a: torch.Tensor, mask_a: torch.Tensor, feat_b: torch.Tensor, mask_b: torch.Tensor,
                     with_maps: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Where each map of aligned pairs (P, La, D) x (P, Lb, D) peaks: (flat argmax (P,) into La x Lb of this
        padded batch, map maximum logit (P,), map logits (P, La, Lb) or None), in slices of at most `chunk_cells`
        cells. Computes the map for every head (for the argmax the screen reports). Features with two spare
        columns are overwritten."""
        n, la = feat_a.shape[:2]
        lb = feat_b.shape[1]
        rows = self.augment(feat_a, mask_a, True)
        cols = self.augment(feat_b, mask_b, False)
        step = n if with_maps else self._slice(la * lb, n)
        argmax, peak = [], []
        for start in range(0, n, step):
            logits = torch.bmm(rows[start:start + step], cols[start:start + step].transpose(1, 2))  # (p, La, Lb)
            best, where = logits.reshape(len(logits), -1).max(dim=1)  # (p, La, Lb) => (p, La * Lb)
            argmax.append(where)
            peak.append(best)
        return torch.cat(argmax), torch.cat(peak), (logits if with_maps else None)  # with maps: one slice


def coarse_topk(topk: int, factor: int) -> int:
    """A coarse cell stands for factor^2 cells: the coarse top-k keeps the same share of the map."""
    return max(1, math.ceil(topk / factor ** 2))


def coarsen(feat: np.ndarray, factor: int, pool: str = "max") -> np.ndarray:
    """Features pooled over consecutive windows of `factor` residues: (L, D) => (ceil(L / factor), D).

    "max" (the default): the features are never negative (ReLU), so a coarse cell's raw product bounds every cell
    of the r x r window pair it covers from above, and peaks survive the pass. "mean": a coarse cell is the mean
    of the cells it covers, which dilutes peaks (lower recall of the exact top pairs; benchmarks/screen.py)."""
    length, dim = feat.shape
    n_windows = -(-length // factor)
    padded = np.zeros((n_windows * factor, dim), dtype=np.float32)  # zeros never exceed a feature
    padded[:length] = feat
    windows = padded.reshape(n_windows, factor, dim)  # (W*r, D) => (W, r, D)
    if pool == "max":
        return windows.max(1)
    counts = np.full(n_windows, factor, dtype=np.float32)
    counts[-1] = length - (n_windows - 1) * factor  # the last window averages only the residues it has
    return windows.sum(1) / counts[:, None]
