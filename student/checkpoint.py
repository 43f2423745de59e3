"""Checkpoints as plain dicts (tensors, numbers, strings, lists, dicts) that load with
`torch.load(path, weights_only=True)`; written under a temporary name and renamed into place.

Keys: format, format_version, tool_version, model (state_dict), model_config, train_config, threshold,
teacher_fingerprint, epoch, metrics, checksum; last.pt adds optimizer, scheduler, rng and trainer state for --resume.

`checksum` is the SHA-256 of the model's tensors (names, dtypes, shapes and bytes) and of the JSON of the keys in
CHECKED_KEYS; `read_checkpoint` recomputes it, so a damaged file (flipped bytes) is refused instead of predicting
nonsense. Checkpoints written before checksums existed have none and load as they did. Every load also refuses
NaN or infinite weights, a threshold outside [0, 1] and a model config that cannot build a model.
"""
from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from data.atomic import WriteError, atomic_path
from data.errors import UserError
from data.version import TOOL_VERSION
from student.config import ModelConfig
from student.model import StudentModel

FORMAT = "protein-loftr-student"
FORMAT_VERSION = 1
CHECKED_KEYS = ("format", "format_version", "model_config", "train_config", "threshold", "teacher_fingerprint")


def payload_checksum(payload: dict[str, Any]) -> str:
    """SHA-256 over the model tensors (sorted by name: name, dtype, shape, bytes) and the JSON of CHECKED_KEYS."""
    digest = hashlib.sha256()
    model = payload.get("model") or {}
    for name in sorted(model):
        tensor = model[name]
        if not isinstance(tensor, torch.Tensor):
            digest.update(f"{name}={tensor!r};".encode())
            continue
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    config = {key: payload.get(key) for key in CHECKED_KEYS}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (plus format keys and its checksum) atomically."""
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": TOOL_VERSION, **payload}
    payload["checksum"] = {"sha256": payload_checksum(payload), "covers": "model tensors, " + ", ".join(CHECKED_KEYS)}
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a failed write (e.g. a full disk) this way
            text = str(exc).strip().splitlines()
            raise WriteError(path, f"the write failed ({text[-1] if text else exc}); is the disk full?") from exc
    return path


def _not_a_checkpoint(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        return "an empty file"
    if zipfile.is_zipfile(path):
        return "a zip file that torch cannot read as a checkpoint (damaged or another kind of archive)"
    if head[:1] == b"\x80":
        return "a pickle file of another format (checkpoints are zip files written by torch.save)"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "a binary file of another kind"


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict, checked: a student checkpoint of a format this version reads, its checksum (when it has
    one), finite weights and threshold."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory; give the .pt file (e.g. {path / 'best.pt'})")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        if isinstance(exc, OSError) and exc.errno is not None:  # no permission, ...: cli names path and cause
            raise
        unsafe = "weights_only" in str(exc) and zipfile.is_zipfile(path)
        if unsafe:
            raise UserError(f"{path} is not a checkpoint this tool loads: it holds Python objects other than "
                            "tensors and plain values (pickled code is never run)") from None
        raise UserError(f"{path} is not a checkpoint: it is {_not_a_checkpoint(path)}, not a protein-loftr student "
                        "checkpoint (best.pt or last.pt of `train`)") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise UserError(f"{path} is not a protein-loftr student checkpoint")
    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has checkpoint format {checkpoint.get('format_version')}, this version reads "
                        f"{FORMAT_VERSION}")
    stored = checkpoint.get("checksum")
    if stored is not None:
        expected = stored.get("sha256") if isinstance(stored, dict) else None
        if expected != payload_checksum(checkpoint):
            raise UserError(f"{path} fails its checksum (SHA-256 of its weights and config): the file was damaged "
                            "or edited after it was written; use another copy or train again")
    check_finite(checkpoint, path)
    return checkpoint


def check_finite(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Refuse NaN or infinite weights and a threshold that is not a number in [0, 1]."""
    model = checkpoint.get("model")
    if not isinstance(model, dict):
        raise UserError(f"{path}: the checkpoint holds no model weights")
    bad = [name for name, tensor in model.items()
           if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise UserError(f"{path}: weights {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} hold NaN or "
                        "infinite values (a diverged or damaged model): use another checkpoint")
    if "threshold" in checkpoint:
        threshold = checkpoint["threshold"]
        try:
            value = float(threshold)
        except (TypeError, ValueError):
            value = math.nan
        if not (0.0 <= value <= 1.0):  # NaN fails this too
            raise UserError(f"{path}: its decision threshold is {threshold!r}, not a probability in [0, 1]")


def _check_model_config(values: Any, path: str | Path) -> ModelConfig:
    """ModelConfig from the checkpoint's dict, each field checked against the type of its default."""
    if not isinstance(values, dict):
        raise UserError(f"{path}: the checkpoint's model_config is {type(values).__name__}, not a mapping")
    for item in fields(ModelConfig):
        if item.name not in values:
            continue
        value = values[item.name]
        default = item.default
        if isinstance(default, tuple):
            good = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in value)
            wanted = "a list of integers"
        elif isinstance(default, bool):
            good, wanted = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            good, wanted = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            good = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            wanted = "a finite number"
        elif isinstance(default, str):
            good, wanted = isinstance(value, str), "a string"
        else:
            good, wanted = True, ""
        if not good:
            raise UserError(f"{path}: model_config field {item.name} is {value!r}, expected {wanted}: the "
                            "checkpoint's config is damaged or was edited")
    try:
        return ModelConfig.from_dict(values)
    except UserError as exc:
        raise UserError(f"{path}: the checkpoint's model_config is not valid: {exc}") from None


def model_from_checkpoint(checkpoint: dict[str, Any], path: str | Path = "checkpoint") -> StudentModel:
    config = _check_model_config(checkpoint.get("model_config"), path)
    try:
        model = StudentModel(config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path}: the checkpoint's model_config cannot build a model ({exc})") from None
    try:
        missing, unexpected = model.load_state_dict(checkpoint["model"], strict=False)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{path}: weights do not match the model config ({first[-1].strip() if first else exc})"
                        ) from None
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the model config (missing {missing}, unexpected "
                        f"{unexpected})")
    return model


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[StudentModel, dict[str, Any]]:
    """(model in eval mode on `device`, checkpoint dict)."""
    checkpoint = read_checkpoint(path, device)
    model = model_from_checkpoint(checkpoint, path).to(device).eval()
    return model, checkpoint
