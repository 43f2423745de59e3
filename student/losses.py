"""Training losses: class-weighted cross-entropy, the map loss against the teacher's map, the semantic loss.

The map loss is taken over real residue cells only (`valid`), and only for pairs that carry a target. Planted or
real inter-chain contacts fill well under 1% of a map, so an average over all cells would make the map term vanish
next to the label loss (docs/results.md, section 1, "What this shows"). `norm="mass"` (the default) therefore sums
the per-cell loss and divides by the teacher map's total mass, so a pair's map term is of order one whatever its
sparsity. A pair whose map is (nearly) empty, e.g. a negative of the planted benchmark, is divided by the mass a map of its size holds on
average instead (`mean_density` x cells, the training set's mean teacher value), and never by less than 1;
`norm="mean"` is the original average over cells. For `kl` the teacher's rows (and columns) are distributions
over the partner's residues; rows are weighted by their teacher mass ("mass") or equally ("mean").

Variants for an imperfect teacher (issue 16):
- `rank`: a listwise ranking loss that asks only that the teacher's top cells rank above the rest of the map:
  minus the mean log-softmax (over all real cells) of the student's logits at the teacher's `rank_k` highest
  cells (only cells with a positive teacher value; a pair with an empty teacher map has no term). Absolute
  teacher values, and so the strength a teacher gives a negative, do not enter.
- `marginal`: BCE between the student's row (and column) maxima (max over the partner's residues of its logits)
  and the teacher's row (column) maxima, i.e. "which residues are interface", normalised like the cell losses.
- `top_target=k`: each teacher map is replaced by its k highest cells (value 1; only cells with a positive teacher
  value) and 0 elsewhere before any loss, so a cell loss learns where the teacher peaks, not its background.
- `pairs="positives"`: only pairs labelled 1 enter the map loss (the label decides, not the teacher);
  `confidence=True`: each pair's term is weighted by the teacher map's peak (its maximum).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from student.config import CE_NORMS

MIN_MASS = 1.0  # denominator floor of the mass normalisation: a map with almost no mass is not blown up


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Binary cross-entropy on logits (B,); positives weighted by `pos_weight` (negatives / positives)."""
    weight = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weight)


def _row_kl(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-pair KL(teacher row || student row) over the columns, rows weighted by mass or equally; (B,)."""
    row_mass = (target * valid).sum(dim=2)  # (B, La)
    q = target * valid / row_mass.clamp_min(1e-12)[:, :, None]  # (B, La, Lb), each row with mass sums to 1
    log_p = F.log_softmax(logits, dim=2)  # masked cells hold MASKED_LOGIT: p = 0 there
    cell = (torch.xlogy(q, q) - q * log_p) * valid
    row_kl = cell.sum(dim=2)  # (B, La)
    if norm == "mass":
        weight = row_mass
    else:
        weight = (row_mass > 0).to(row_kl.dtype)
    return (row_kl * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1e-12)


def _rank(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair listwise loss of the teacher's top-k cells, and whether a pair has any (B,)."""
    batch = logits.shape[0]
    flat_logits = logits.masked_fill(~valid, float("-inf")).reshape(batch, -1)
    log_p = flat_logits - torch.logsumexp(flat_logits, dim=1, keepdim=True)
    flat_target = target.masked_fill(~valid, -1.0).reshape(batch, -1)
    k = min(k, flat_target.shape[1])
    values, index = flat_target.topk(k, dim=1)
    chosen = (values > 0).to(logits.dtype)  # only cells the teacher marks at all
    picked = log_p.gather(1, index).masked_fill(chosen == 0, 0.0)
    count = chosen.sum(dim=1)
    return -(picked * chosen).sum(dim=1) / count.clamp_min(1.0), count > 0


def _marginal(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, norm: str,
              mean_density: float) -> torch.Tensor:
    """Per-pair BCE of student row/column maxima against teacher row/column maxima, (B,)."""
    masked = logits.masked_fill(~valid, float("-inf"))
    per_axis = []
    for dim in (2, 1):
        real = valid.any(dim=dim)  # (B, L) real residues of this axis
        student = masked.amax(dim=dim).masked_fill(~real, 0.0)
        teacher = (target * valid).amax(dim=dim)
        cell = F.binary_cross_entropy_with_logits(student, teacher, reduction="none") * real
        if norm == "mass":
            floor = (mean_density * real.sum(dim=1)).clamp_min(MIN_MASS)
            per_axis.append(cell.sum(dim=1) / torch.maximum(teacher.sum(dim=1), floor))
        else:
            per_axis.append(cell.sum(dim=1) / real.sum(dim=1).clamp_min(1))
    return 0.5 * (per_axis[0] + per_axis[1])


def top_cells(target: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """(B, La, Lb) teacher maps => 1 at each map's k highest valid cells with a positive value, 0 elsewhere."""
    batch = target.shape[0]
    flat = target.masked_fill(~valid, -1.0).reshape(batch, -1)  # (B, La, Lb) => (B, La * Lb)
    values, index = flat.topk(min(k, flat.shape[1]), dim=1)
    out = torch.zeros_like(flat).scatter_(1, index, (values > 0).to(flat.dtype))
    return out.view_as(target)


def map_loss(map_logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, kind: str = "mse",
             norm: str = "mass", has_target: torch.Tensor | None = None,
             mean_density: float = 0.0, labels: torch.Tensor | None = None, pairs: str = "all",
             confidence: bool = False, rank_k: int = 16, top_target: int = 0) -> torch.Tensor:
    """Weighted mean over pairs with a target of the per-pair map loss.

    map_logits, target: (B, La, Lb) (target in [0, 1], any value at invalid cells); valid: (B, La, Lb) bool;
    has_target: (B,) bool. mean_density: floor of the mass normalisation per valid cell (see the module docstring).
    labels (B,): needed for pairs="positives". top_target > 0: the teacher maps' top cells as a 0/1 target.
    Gradients at invalid cells are exactly zero.
    """
    logits = map_logits.float()
    valid_f = valid.to(logits.dtype)
    target = target.float() * valid_f
    peak = target.amax(dim=(1, 2))  # the teacher's own peak, before a top-k target makes every peak 1
    if top_target > 0:
        target = top_cells(target, valid, top_target)
    weight = torch.ones(logits.shape[0], dtype=logits.dtype, device=logits.device)
    if has_target is not None:
        weight = weight * has_target.to(logits.dtype)
    if pairs == "positives":
        if labels is None:
            raise ValueError("a positives-only map loss needs the labels")
        weight = weight * (labels.float() > 0.5).to(logits.dtype)
    elif pairs != "all":
        raise ValueError(f"unknown map-loss pairs {pairs!r}")
    if confidence:
        weight = weight * peak
    if kind == "rank":
        per_pair, has_cells = _rank(logits, target, valid, rank_k)
        weight = weight * has_cells.to(logits.dtype)
    elif kind == "marginal":
        per_pair = _marginal(logits, target, valid, norm, mean_density)
    elif kind == "kl":
        per_pair = 0.5 * (_row_kl(logits, target, valid_f, norm)
                          + _row_kl(logits.transpose(1, 2), target.transpose(1, 2), valid_f.transpose(1, 2), norm))
    else:
        if kind == "mse":
            cell = (torch.sigmoid(logits) - target) ** 2
        elif kind == "bce":
            cell = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            raise ValueError(f"unknown map loss {kind!r}")
        total = (cell * valid_f).sum(dim=(1, 2))  # (B,)
        if norm == "mass":
            floor = (mean_density * valid_f.sum(dim=(1, 2))).clamp_min(MIN_MASS)
            per_pair = total / torch.maximum(target.sum(dim=(1, 2)), floor)
        elif norm == "mean":
            per_pair = total / valid_f.sum(dim=(1, 2)).clamp_min(1.0)
        else:
            raise ValueError(f"unknown map loss normalisation {norm!r}")
    if has_target is None and pairs == "all" and not confidence and kind != "rank":
        return per_pair.mean()
    # a batch without any weighted pair gives 0 (not nan); confidence weights are divided by their own sum
    return (per_pair * weight).sum() / (weight.sum().clamp_min(1e-6) if confidence else weight.sum().clamp_min(1.0))


def semantic_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity between projected student embeddings (N, E) and teacher embeddings (N, E), mean."""
    return (1.0 - F.cosine_similarity(student.float(), teacher.float(), dim=1, eps=1e-8)).mean()


def total_loss(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], pos_weight: float | None,
               alpha_map: float, beta_sem: float, map_kind: str, map_norm: str, mean_density: float = 0.0,
               map_pairs: str = "all", map_confidence: bool = False, map_rank_k: int = 16,
               map_top_target: int = 0, ce_norm: str = "batch",
               ce_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """ce_weight * CE + alpha_map * map loss + beta_sem * semantic loss; also the detached parts. CE reads only the
    batch's labelled pairs (`batch["labelled"]`); a batch of unlabelled pairs only has no CE part. `ce_norm`
    "batch" (TrainConfig's default): their sum over the batch size, so that each label weighs per step what it weighs
    in a batch without unlabelled pairs; "labelled": their mean. The CE part reported is their mean either way, and
    unweighted (`ce_weight` 0 is the trainer's map-first curriculum)."""
    if ce_norm not in CE_NORMS:
        raise ValueError(f"unknown CE normalisation {ce_norm!r}")
    parts = {}
    labelled = batch.get("labelled")
    if labelled is None or bool(labelled.all()):
        parts["ce"] = classification_loss(outputs["logit"], batch["label"], pos_weight)
        loss = parts["ce"] * ce_weight
    elif bool(labelled.any()):
        parts["ce"] = classification_loss(outputs["logit"][labelled], batch["label"][labelled], pos_weight)
        loss = parts["ce"] * ce_weight * (labelled.float().mean() if ce_norm == "batch" else 1.0)
    else:
        loss = outputs["logit"].sum() * 0.0
    if alpha_map > 0 and "target" in batch:
        valid = batch["mask_a"][:, :, None] & batch["mask_b"][:, None, :]
        parts["map"] = map_loss(outputs["map"], batch["target"], valid, map_kind, map_norm, batch.get("has_target"),
                                mean_density, batch["label"], map_pairs, map_confidence, map_rank_k,
                                map_top_target)
        loss = loss + alpha_map * parts["map"]
    if beta_sem > 0 and "emb_a" in batch and "sem_a" in outputs:
        parts["sem"] = semantic_loss(torch.cat([outputs["sem_a"], outputs["sem_b"]]),
                                     torch.cat([batch["emb_a"], batch["emb_b"]]))
        loss = loss + beta_sem * parts["sem"]
    return loss, {name: value.detach() for name, value in parts.items()}
