"""Checkpoints as plain dicts (tensors, numbers, strings, lists, dicts) that load with
`torch.load(path, weights_only=True)`; written under a temporary name and renamed into place.

Keys: format, format_version, tool_version, model (state_dict), model_config, train_config, threshold,
teacher_fingerprint, epoch, metrics; last.pt adds optimizer, scheduler, rng and trainer state for --resume.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from data.atomic import atomic_path
from data.errors import UserError
from data.version import TOOL_VERSION
from student.config import ModelConfig
from student.model import StudentModel

FORMAT = "protein-loftr-student"
FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (plus format keys) atomically."""
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": TOOL_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict, checked to be a student checkpoint of a format this version reads."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise UserError(f"{path} is not a protein-loftr student checkpoint")
    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has checkpoint format {checkpoint.get('format_version')}, this version reads "
                        f"{FORMAT_VERSION}")
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any], path: str | Path = "checkpoint") -> StudentModel:
    model = StudentModel(ModelConfig.from_dict(checkpoint["model_config"]))
    missing, unexpected = model.load_state_dict(checkpoint["model"], strict=False)
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the model config (missing {missing}, unexpected "
                        f"{unexpected})")
    return model


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[StudentModel, dict[str, Any]]:
    """(model in eval mode on `device`, checkpoint dict)."""
    checkpoint = read_checkpoint(path, device)
    model = model_from_checkpoint(checkpoint, path).to(device).eval()
    return model, checkpoint
