"""Scoring many pairs at once with a trained `StudentModel`, equal to `model.classify` on each pair.

`classify` computes one (La, Lb) map per pair with a batched matmul, then masks, scales and reduces it. Here a
block of row proteins (na, La, D) and column proteins (nb, Lb, D) becomes one matrix product
(na * La, D + 2) @ (D + 2, nb * Lb) whose two extra columns fold in the map's scale, bias and padding mask, so a
single GEMM yields the calibrated, masked logits of all na x nb maps. The map statistics (max, top-k mean,
log-mean-exp) are then reduced over the residue axes of that 4-d view, and the model's own head modules turn
them into logits. `tests/test_screen.py` checks equality with `classify` and `predict_pairs`.

The coarse pass (`coarsen`) max-pools the features over windows of r residues, so the coarse map has 1/r^2 of
the cells and (features being non-negative) bounds each r x r window of the raw map from above. Its score only
ranks pairs for exact re-scoring.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from student.model import MASKED_LOGIT, StudentModel


class BlockScorer:
    """Exact and coarse pair logits from per-protein features (as `StudentModel.encode` returns them)."""

    def __init__(self, model: StudentModel):
        self.model = model
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

    def block_map(self, feat_a: torch.Tensor, mask_a: torch.Tensor, feat_b: torch.Tensor,
                  mask_b: torch.Tensor) -> torch.Tensor:
        """Map logits of every (row, column) pair: (na, La, D), (nb, Lb, D) => (na, La, nb, Lb). Features with
        two spare columns (see `augment`) are overwritten."""
        na, la = feat_a.shape[:2]
        nb, lb = feat_b.shape[:2]
        rows = self.augment(feat_a, mask_a, True).reshape(na * la, -1)  # (na, La, D+2) => (na*La, D+2)
        cols = self.augment(feat_b, mask_b, False).reshape(nb * lb, -1)
        return (rows @ cols.T).view(na, la, nb, lb)

    def pair_map(self, feat_a: torch.Tensor, mask_a: torch.Tensor, feat_b: torch.Tensor,
                 mask_b: torch.Tensor) -> torch.Tensor:
        """Map logits of aligned pairs: (P, La, D), (P, Lb, D) => (P, La, 1, Lb)."""
        rows = self.augment(feat_a, mask_a, True)
        cols = self.augment(feat_b, mask_b, False)
        return torch.bmm(rows, cols.transpose(1, 2)).unsqueeze(2)  # (P, La, Lb) => (P, La, 1, Lb)

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
        best_rows = row_max.topk(min(k, la), dim=1).indices  # (n, kr, m)
        rows = logits.gather(1, best_rows[..., None].expand(-1, -1, -1, lb))  # (n, kr, m, Lb)
        rows = rows.permute(0, 2, 1, 3).reshape(n, m, -1)  # (n, kr, m, Lb) => (n, m, kr * Lb)
        top = rows.topk(min(k, rows.shape[2]), dim=2).values  # (n, m, k)
        keep = torch.arange(top.shape[2], device=top.device) < n_valid.clamp_max(k)[..., None]
        top_mean = (top * keep).sum(2) / keep.sum(2)
        shifted = logits.sub_(top_max[:, None, :, None]) if in_place else logits - top_max[:, None, :, None]
        sum_exp = shifted.exp_().sum(dim=(1, 3))  # (n, m)
        log_mean_exp = top_max + torch.log(sum_exp) - torch.log(n_valid.to(logits.dtype))
        return torch.stack([top_max, top_mean, log_mean_exp], dim=2)

    # 3. whole blocks and pair lists --------------------------------------------------------------------------
    @torch.no_grad()
    def score_block(self, feat_a: torch.Tensor | None, mask_a: torch.Tensor | None, pooled_a: torch.Tensor,
                    feat_b: torch.Tensor | None, mask_b: torch.Tensor | None, pooled_b: torch.Tensor,
                    rows: torch.Tensor, cols: torch.Tensor, topk: int | None = None) -> torch.Tensor:
        """Logits (P,) of the pairs (rows[p], cols[p]) of a block of row proteins (na, La, D) and column
        proteins (nb, Lb, D); pooled_* are their max-pooled features (n, D). With coarse features pass the
        coarse top-k. The features head needs only the pooled features (feat_* and mask_* may be None)."""
        stats = None
        if self.uses_map:
            logits = self.block_map(feat_a, mask_a, feat_b, mask_b)
            n_valid = mask_a.sum(1)[:, None] * mask_b.sum(1)[None, :]  # (na, nb)
            stats = self.map_statistics(logits, n_valid, topk, in_place=True)[rows, cols]  # (na, nb, 3) => (P, 3)
        return self.model.head(pooled_a[rows], pooled_b[cols], stats)

    @torch.no_grad()
    def score_pairs(self, feat_a: torch.Tensor, mask_a: torch.Tensor, pooled_a: torch.Tensor,
                    feat_b: torch.Tensor, mask_b: torch.Tensor, pooled_b: torch.Tensor, with_maps: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Aligned pairs (P, La, D) x (P, Lb, D) => (logits (P,), flat argmax of each map (P,) into
        La x Lb of this padded batch, map logits (P, La, Lb) or None). Computes the map even for the features
        head (for the argmax the screen reports)."""
        maps = self.pair_map(feat_a, mask_a, feat_b, mask_b)  # (P, La, 1, Lb)
        stats = None
        if self.uses_map:
            n_valid = (mask_a.sum(1) * mask_b.sum(1))[:, None]  # (P, 1)
            stats = self.map_statistics(maps, n_valid)[:, 0]  # (P, 1, 3) => (P, 3)
        logits = self.model.head(pooled_a, pooled_b, stats)
        flat = maps.reshape(maps.shape[0], -1)  # (P, La, 1, Lb) => (P, La * Lb)
        return logits, flat.argmax(dim=1), (maps[:, :, 0] if with_maps else None)


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
