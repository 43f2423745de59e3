"""Device names, one vocabulary for every command: auto | cpu | cuda | cuda:N, and the one resolver.

`check_device` validates a name without importing torch (configs call it when they are built); `resolve_device`
turns it into a `torch.device` and refuses a CUDA device this machine does not have. Both raise `UserError`.
"""
from __future__ import annotations

import re
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from data.errors import UserError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda or cuda:N."
_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(name: str) -> str:
    """The name itself when it is in the vocabulary; a UserError naming the vocabulary otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(f"--device {name!r}: expected {DEVICE_CHOICES}")
    return name


def resolve_device(name: str) -> "torch.device":
    """auto: the first CUDA device when torch sees one, else the CPU; cuda and cuda:N only where they exist."""
    import torch

    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: torch sees no CUDA device here (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                            f"numbered from 0")
    return device


def autocast_for(device: "torch.device | str"):
    """bf16 autocast on CUDA, nothing elsewhere (bf16 matrix products are slower than fp32 on most CPUs)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def to_device(batch: dict[str, Any], device: "torch.device | str") -> dict[str, Any]:
    """Every tensor of a collated batch moved to `device` (asynchronously from pinned memory)."""
    return {name: value.to(device, non_blocking=True) for name, value in batch.items()}
