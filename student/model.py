"""The CNN student: a shared residue embedding and 1D-CNN over both proteins, their interaction map
featA @ featB.T, and a classifier head on pooled features, on map statistics, or on both.

Padding never changes an output: features at padded positions are zeroed before every convolution (so a
convolution at a sequence's end sees the same zeros it would see alone), batch-norm statistics are taken over real
residues only, pooling ignores padding and map cells outside both sequences are masked. Predictions are symmetric,
p(A, B) == p(B, A): the features head combines the pooled proteins by sum and elementwise product, and the map
statistics do not change when the map is transposed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from data.alphabet import N_STANDARD, PAD_INDEX
from student.config import ModelConfig

MASKED_LOGIT = -1.0e4  # map logit of cells outside either sequence (sigmoid 0, exp underflows to 0)
# log(300), a typical protein length: centred, the head's product term of two log lengths is not swamped by an offset
LOG_LENGTH_CENTRE = math.log(300.0)


class MaskedBatchNorm1d(nn.Module):
    """BatchNorm1d over (B, C, L) whose training statistics come from the positions where `mask` is True.

    Evaluation uses the running statistics, like nn.BatchNorm1d; outputs at masked positions are zero.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def batch_stats(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, biased variance, count) per channel over the valid positions of x (B, C, L)."""
        m = mask[:, None, :].to(x.dtype)  # (B, 1, L)
        count = m.sum().clamp_min(1.0)
        mean = (x * m).sum(dim=(0, 2)) / count
        var = (((x - mean[None, :, None]) * m) ** 2).sum(dim=(0, 2)) / count
        return mean, var, count

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean, var, count = self.batch_stats(x.float(), mask)
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp_min(1.0)
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)  # (C,)
        shift = self.bias - mean * scale
        out = x * scale[None, :, None].to(x.dtype) + shift[None, :, None].to(x.dtype)
        return out * mask[:, None, :].to(out.dtype)


class StudentModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD_INDEX)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        in_channels = config.embed_dim
        for out_channels, kernel in zip(config.channels, config.kernel_sizes):
            self.convs.append(nn.Conv1d(in_channels, out_channels, kernel, padding=kernel // 2))
            self.norms.append(MaskedBatchNorm1d(out_channels, momentum=config.bn_momentum))
            in_channels = out_channels
        dim = config.feature_dim
        # Calibration of the map logits: featA @ featB.T after ReLU is never negative.
        self.map_scale = nn.Parameter(torch.tensor(1.0))
        self.map_bias = nn.Parameter(torch.tensor(float(config.map_bias_init)))
        if "attention" in config.pool_parts:
            self.attention = nn.Linear(dim, 1)  # a residue's pooling score from its features
        if config.head in ("features", "both"):
            if config.pool_norm:
                self.pool_norm = nn.BatchNorm1d(config.pooled_dim, momentum=config.bn_momentum)
            n_terms = len(config.pair_term_parts)
            self.features_head = nn.Sequential(nn.Linear(n_terms * config.pooled_dim, config.hidden), nn.ReLU(),
                                               nn.Dropout(config.dropout), nn.Linear(config.hidden, 1))
        if config.head in ("map", "both"):
            self.map_head = nn.Sequential(nn.Linear(3, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1))
        if config.semantic_dim > 0:
            self.semantic = nn.Linear(dim, config.semantic_dim)

    @property
    def uses_map(self) -> bool:
        return self.config.head in ("map", "both")

    # 1. backbone --------------------------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-residue features (B, L, D) of tokens (B, L); zero at padded positions."""
        x = self.embedding(tokens).transpose(1, 2)  # (B, L, E) => (B, E, L)
        m = mask[:, None, :].to(x.dtype)  # (B, 1, L)
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x * m)
            x = F.relu(norm(x, mask))
        x = x * m.to(x.dtype)
        return x.transpose(1, 2)  # (B, D, L) => (B, L, D)

    def pool(self, feat: torch.Tensor, mask: torch.Tensor, length: torch.Tensor | None = None,
             tokens: torch.Tensor | None = None) -> torch.Tensor:
        """What the features head reads of each protein, over real residues only, by `ModelConfig.pool`: the max,
        the mean and/or the attention-weighted mean of the features (B, L, D) => (B, D) each, the centred log length
        (B, 1) and the residue composition (B, 20), concatenated in that order to (B, pooled_dim). `length` (B,): the
        proteins' whole lengths when they were cropped (training); by default the mask's. `tokens` (B, L): needed by the
        composition part."""
        parts = self.config.pool_parts
        pooled = []
        if "max" in parts:
            pooled.append(feat.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1))
        if "mean" in parts:
            pooled.append(self.mean_pool(feat, mask))
        if "attention" in parts:
            scores = self.attention(feat).squeeze(2).float().masked_fill(~mask, float("-inf"))  # (B, L)
            weights = torch.softmax(scores, dim=1).to(feat.dtype)
            pooled.append(torch.einsum("bl,bld->bd", weights, feat))
        if "length" in parts:
            length = mask.sum(dim=1) if length is None else length
            pooled.append(torch.log(length.clamp_min(1).to(feat.dtype))[:, None] - LOG_LENGTH_CENTRE)  # (B, 1)
        if "composition" in parts:
            if tokens is None:
                raise ValueError("the composition part of the pooling needs the tokens")
            pooled.append(composition(tokens, mask).to(feat.dtype))
        return torch.cat(pooled, dim=1)

    def mean_pool(self, feat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over real residues: (B, L, D) => (B, D)."""
        m = mask[:, :, None].to(feat.dtype)
        return (feat * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)

    # 2. interaction map --------------------------------------------------------------------------------------
    def interaction_map(self, feat_a: torch.Tensor, mask_a: torch.Tensor, feat_b: torch.Tensor,
                        mask_b: torch.Tensor) -> torch.Tensor:
        """Calibrated map logits (B, La, Lb); cells outside either sequence hold MASKED_LOGIT."""
        dim = feat_a.shape[-1]
        raw = torch.bmm(feat_a, feat_b.transpose(1, 2)) * dim ** -0.5  # (B, La, D) x (B, D, Lb) => (B, La, Lb)
        logits = raw * self.map_scale + self.map_bias
        valid = mask_a[:, :, None] & mask_b[:, None, :]
        return logits.masked_fill(~valid, MASKED_LOGIT)

    def map_statistics(self, map_logits: torch.Tensor, mask_a: torch.Tensor, mask_b: torch.Tensor) -> torch.Tensor:
        """Transpose-invariant statistics of the valid cells: (max, top-k mean, log-mean-exp), shape (B, 3)."""
        batch = map_logits.shape[0]
        flat = map_logits.float().reshape(batch, -1)  # (B, La, Lb) => (B, La * Lb)
        n_valid = (mask_a.sum(1) * mask_b.sum(1)).clamp_min(1)  # (B,)
        k = min(self.config.map_topk, flat.shape[1])
        top = flat.topk(k, dim=1).values  # (B, k), sorted; masked cells sort last
        keep = torch.arange(k, device=flat.device)[None, :] < n_valid.clamp_max(k)[:, None]
        top_mean = (top * keep).sum(1) / keep.sum(1)
        log_mean_exp = torch.logsumexp(flat, dim=1) - torch.log(n_valid.to(flat.dtype))
        return torch.stack([top[:, 0], top_mean, log_mean_exp], dim=1)

    # 3. classifier -------------------------------------------------------------------------------------------
    def head(self, pooled_a: torch.Tensor, pooled_b: torch.Tensor, map_stats: torch.Tensor | None) -> torch.Tensor:
        """Interaction logits (B,) from the pooled features (B, D) of both proteins (`pool`) and the map statistics
        (B, 3) (`map_statistics`; None for the features head). The one classifier that training, `predict` and the
        screener all call."""
        logit = torch.zeros(pooled_a.shape[0], device=pooled_a.device)
        if self.config.head in ("features", "both"):
            if self.config.pool_norm:
                batch = pooled_a.shape[0]
                both = self.pool_norm(torch.cat([pooled_a, pooled_b]))  # (2B, P): one set of statistics for A, B
                pooled_a, pooled_b = both[:batch], both[batch:]
            terms = [pooled_a + pooled_b, pooled_a * pooled_b]
            if "difference" in self.config.pair_term_parts:
                terms.append((pooled_a - pooled_b).abs())
            combined = torch.cat(terms, dim=1)  # (B, n_terms x P), each term symmetric in A and B
            logit = logit + self.features_head(combined).squeeze(1).float()
        if self.uses_map:
            logit = logit + self.map_head(map_stats.to(pooled_a.dtype)).squeeze(1).float()
        return logit

    def classify(self, feat_a: torch.Tensor, mask_a: torch.Tensor, feat_b: torch.Tensor, mask_b: torch.Tensor,
                 map_logits: torch.Tensor | None = None, length_a: torch.Tensor | None = None,
                 length_b: torch.Tensor | None = None, tokens_a: torch.Tensor | None = None,
                 tokens_b: torch.Tensor | None = None) -> torch.Tensor:
        """Interaction logits (B,) from the features of both proteins (as returned by `encode`); `map_logits`
        (from `interaction_map`) saves recomputing the map when the caller has it; `length_a`, `length_b` are the
        whole lengths of cropped proteins and `tokens_a`, `tokens_b` the tokens (`pool`)."""
        stats = None
        if self.uses_map:
            if map_logits is None:
                map_logits = self.interaction_map(feat_a, mask_a, feat_b, mask_b)
            stats = self.map_statistics(map_logits, mask_a, mask_b)
        return self.head(self.pool(feat_a, mask_a, length_a, tokens_a), self.pool(feat_b, mask_b, length_b, tokens_b),
                         stats)

    def semantic_embedding(self, feat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Projection of a protein's mean-pooled features to the teacher's embedding size (B, E_teacher)."""
        return self.semantic(self.mean_pool(feat, mask))

    def forward(self, tokens_a: torch.Tensor, mask_a: torch.Tensor, tokens_b: torch.Tensor, mask_b: torch.Tensor,
                length_a: torch.Tensor | None = None, length_b: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """Logits, map logits and features of a batch; `length_a`, `length_b` (B,) are the whole lengths of
        proteins that training cropped (without them, the lengths are the masks')."""
        batch, len_a, len_b = tokens_a.shape[0], tokens_a.shape[1], tokens_b.shape[1]
        length = max(len_a, len_b)
        # Both proteins go through the backbone as one batch, so batch statistics see A and B alike.
        tokens = torch.cat([F.pad(tokens_a, (0, length - len_a), value=PAD_INDEX),
                            F.pad(tokens_b, (0, length - len_b), value=PAD_INDEX)])  # (2B, L)
        mask = torch.cat([F.pad(mask_a, (0, length - len_a)), F.pad(mask_b, (0, length - len_b))])
        feat = self.encode(tokens, mask)  # (2B, L, D)
        feat_a, feat_b = feat[:batch, :len_a], feat[batch:, :len_b]
        map_logits = self.interaction_map(feat_a, mask_a, feat_b, mask_b)
        out = {"logit": self.classify(feat_a, mask_a, feat_b, mask_b, map_logits, length_a, length_b, tokens_a,
                                      tokens_b),
               "map": map_logits,
               "feat_a": feat_a, "feat_b": feat_b}
        if self.config.semantic_dim > 0:
            out["sem_a"] = self.semantic_embedding(feat_a, mask_a)
            out["sem_b"] = self.semantic_embedding(feat_b, mask_b)
        return out


def composition(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fractions of the 20 standard residues among the real residues of each row: (B, L) => (B, 20); the other
    letters (X, B, U, Z, O) are left out of both the counts and the total, as in `student.evaluation.baselines`."""
    index = (tokens - 1).masked_fill(~mask | (tokens < 1) | (tokens > N_STANDARD), N_STANDARD)  # N_STANDARD: dropped
    counts = F.one_hot(index, N_STANDARD + 1)[..., :N_STANDARD].sum(dim=1).float()  # (B, L, 21) => (B, 20)
    return counts / counts.sum(dim=1, keepdim=True).clamp_min(1.0)


def log_odds(p: float, eps: float = 1e-6) -> float:
    """Logit of a probability, clipped away from 0 and 1."""
    p = min(max(float(p), eps), 1.0 - eps)
    return math.log(p / (1.0 - p))
