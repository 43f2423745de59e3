"""`--tokens-per-batch auto`: the padded-token budget of a forward batch, fitted to the memory the device has left.

Stage one's memory is dominated per layer by the attention of every sequence of the batch: the scores, the masked
scores and the softmax output fair-esm's MultiheadAttention keeps alive together, heads x T x T each. The estimate
below counts those (12 bytes per element covers float32, and bfloat16 with its float32 softmax) plus the
feed-forward activations; `tests/test_batch_size.py` checks it against the measured peak on CPU.

fair-esm batches by `max_len * batch_size <= tokens_per_batch` over length-sorted inputs. A batch of n inputs of
padded length T then needs n * bytes_per_input(T) = tokens * bytes_per_token(T), and bytes_per_token grows with T,
so a budget that fits the longest input's bytes_per_token fits every batch.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

ATTENTION_BYTES_PER_ELEMENT = 12  # three (heads, T, T) float32 tensors alive at once
ACTIVATION_BYTES_PER_TOKEN_AND_DIM = 64  # q, k, v, residual, and the 4x feed-forward in float32, with slack
MEMORY_FRACTION = {"cuda": 0.8, "cpu": 0.5}  # of what the device has free once the model is loaded


def input_bytes(tokens: int, attention_heads: int, embed_dim: int) -> int:
    """Estimated peak bytes one input of `tokens` padded tokens adds to a forward pass."""
    return (ATTENTION_BYTES_PER_ELEMENT * attention_heads * tokens * tokens
            + ACTIVATION_BYTES_PER_TOKEN_AND_DIM * embed_dim * tokens)


def available_bytes(device: torch.device) -> int:
    """Memory the device can still give: CUDA free plus the caching allocator's unused reserve; CPU MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise OSError("/proc/meminfo has no MemAvailable line")


def fit_tokens_per_batch(longest: int, attention_heads: int, embed_dim: int, budget_bytes: int) -> int:
    """The largest token budget whose every batch fits `budget_bytes`; never below one longest input."""
    per_token = input_bytes(longest, attention_heads, embed_dim) / longest
    tokens = int(budget_bytes // per_token)
    if tokens < longest:
        log.warning("the longest input (%d tokens) needs about %.1f GB, more than the %.1f GB budget; it runs alone",
                    longest, input_bytes(longest, attention_heads, embed_dim) / 1e9, budget_bytes / 1e9)
        return longest
    return tokens


def auto_tokens_per_batch(device: torch.device, longest: int, attention_heads: int, embed_dim: int) -> int:
    """fit_tokens_per_batch with the device's share (MEMORY_FRACTION) of what it has available now."""
    budget = int(available_bytes(device) * MEMORY_FRACTION[device.type])
    tokens = fit_tokens_per_batch(longest, attention_heads, embed_dim, budget)
    log.info("--tokens-per-batch auto: %d (longest input %d tokens, budget %.1f GB on %s)", tokens, longest,
             budget / 1e9, device)
    return tokens
