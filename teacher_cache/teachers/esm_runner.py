"""The ESM-2 teacher: loading fair-esm checkpoints safely, and one forward pass that yields the inter-chain maps.

This is the only module of the project that imports fair-esm (`esm`).

Loading. `--model` is a fair-esm hub name or a local `.pt` in fair-esm's format with `<stem>-contact-regression.pt`
beside it. fair-esm's own loaders call `torch.load` without arguments, which under torch >= 2.6 means
`weights_only=True` and rejects the `argparse.Namespace` inside every ESM-2 file. We load with `weights_only=True`
and allow exactly that one class, then build the model with fair-esm's `load_model_and_alphabet_core` (which
names missing and unexpected weights).

Forward. fair-esm's `return_contacts=True` stacks every layer's attention (B, layers, heads, T, T) in float32
before its contact head. `EsmTeacher.pair_maps` runs fair-esm's own modules layer by layer instead and applies the
contact head incrementally: per layer, drop BOS/EOS (and padding), symmetrise, APC, and project that layer's heads
with its slice of the regression weights, keeping only the A x B block. Padding and EOS are masked out of APC's row
sums, so a pair's maps do not depend on what else is in its batch (fair-esm's head equals ours on an unpadded
single sequence; tests/test_runner.py checks both).
"""
from __future__ import annotations

import argparse
import logging
import pickle
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import esm
import numpy as np
import torch
from esm.data import FastaBatchedDataset
from esm.pretrained import load_model_and_alphabet_core

from data.device import resolve_device
from teacher_cache.teachers.config import RandomTeacherConfig
from data.atomic import check_outputs
from data.errors import UserError
from data.keys import file_sha256

log = logging.getLogger(__name__)

HUB_MODELS = ("esm2_t6_8M_UR50D", "esm2_t12_35M_UR50D", "esm2_t30_150M_UR50D", "esm2_t33_650M_UR50D",
              "esm2_t36_3B_UR50D", "esm2_t48_15B_UR50D")
MODEL_URL = "https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"
REGRESSION_URL = "https://dl.fbaipublicfiles.com/fair-esm/regression/{name}-contact-regression.pt"
SAFE_GLOBALS = [argparse.Namespace]  # the only non-tensor class inside fair-esm's ESM-2 checkpoints
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TeacherInfo:
    name: str  # hub name or the local file's stem
    model_path: str
    regression_path: str
    weights_sha256: str
    regression_sha256: str
    random_weights: bool  # the checkpoint itself says it holds random weights (our test fixtures do)
    num_layers: int
    embed_dim: int
    attention_heads: int


# -- loading ---------------------------------------------------------------------------------------------------------
def load_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True, allowing only argparse.Namespace (fair-esm's config record)."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).split("\n")
        reason = next((line.strip() for line in detail if "Unsupported global" in line), detail[0])
        raise UserError(f"{path}: refused to load: it holds objects other than tensors and plain values "
                        f"({reason}); only fair-esm ESM-2 checkpoints are supported") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupted?): {exc}") from None
    if not isinstance(data, dict) or "model" not in data:
        raise UserError(f"{path}: not a fair-esm checkpoint (expected a dict with a 'model' state dict)")
    return data


def _download(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, target)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except urllib.error.HTTPError as exc:
        raise UserError(f"cannot download {url}: HTTP {exc.code} ({exc.reason})") from None
    except (urllib.error.URLError, OSError, ConnectionError, TimeoutError) as exc:
        raise UserError(f"cannot download {url} ({exc}); without internet, pass --model a local file: "
                        f"{target.name} with {target.stem}-contact-regression.pt beside it") from None


def resolve_model_files(model: str) -> tuple[str, Path, Path]:
    """(name, model file, regression file) for a hub name (downloaded once into torch.hub's cache) or a path."""
    if model.endswith(".pt") or "/" in model or Path(model).exists():
        path = Path(model).expanduser()
        if not path.is_file():
            raise UserError(f"model file {path} does not exist")
        regression = path.with_name(f"{path.stem}-contact-regression.pt")
        if not regression.is_file():
            raise UserError(f"{path}: contact regression weights {regression} not found; ESM-2 checkpoints come "
                            f"with {path.stem}-contact-regression.pt, which must sit beside the model file")
        return path.stem, path, regression
    if model not in HUB_MODELS:
        raise UserError(f"unknown model {model!r}: give one of {', '.join(HUB_MODELS)} or a path to a local "
                        "fair-esm .pt file")
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    path, regression = checkpoints / f"{model}.pt", checkpoints / f"{model}-contact-regression.pt"
    for url, target in ((MODEL_URL.format(name=model), path), (REGRESSION_URL.format(name=model), regression)):
        if not target.is_file():
            _download(url, target)
    return model, path, regression


def load_teacher(model: str, device: str = "cpu", precision: str = "auto") -> "EsmTeacher":
    """Load an ESM-2 teacher from a hub name or a local checkpoint; see the module docstring."""
    torch_device = resolve_device(device)
    dtype = resolve_dtype(torch_device, precision)
    name, model_path, regression_path = resolve_model_files(model)
    model_data = load_checkpoint(model_path)
    regression_data = load_checkpoint(regression_path)
    cfg = model_data.get("cfg", {}).get("model") if isinstance(model_data.get("cfg"), dict) else None
    if cfg is None or not hasattr(cfg, "encoder_layers"):
        raise UserError(f"{model_path}: not an ESM-2 checkpoint (no cfg['model'] with encoder_layers); "
                        "ESM-1, ESM-1b and MSA Transformer files are not supported")
    core_name = name if name.startswith("esm2") else f"esm2-{name}"  # fair-esm picks its ESM-2 path by the name
    if core_name != name:
        log.info("%s: file name does not start with 'esm2'; loading it as an ESM-2 checkpoint", model_path)
    try:
        esm_model, alphabet = load_model_and_alphabet_core(
            core_name, {"cfg": model_data["cfg"], "model": dict(model_data["model"])}, regression_data)
    except (RuntimeError, KeyError, AttributeError) as exc:
        raise UserError(f"{model_path}: does not match the ESM-2 architecture its cfg describes: {exc}") from None
    info = TeacherInfo(
        name=name, model_path=str(model_path.resolve()), regression_path=str(regression_path.resolve()),
        weights_sha256=file_sha256(model_path), regression_sha256=file_sha256(regression_path),
        random_weights=bool(model_data.get("random_weights", False)), num_layers=esm_model.num_layers,
        embed_dim=esm_model.embed_dim, attention_heads=esm_model.attention_heads)
    return EsmTeacher(esm_model, alphabet, info, torch_device, dtype)


def resolve_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """auto: float32 on CPU; on CUDA bf16 where supported, else fp16 (the contact head always runs in float32).

    bf16 is allowed on CPU too (faster where the CPU has bf16 matrix instructions; maps within the tolerance
    tests/test_runner.py states); fp16 is not (CPUs have no fast fp16 matrix multiply).
    """
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision not in DTYPES:
        raise UserError(f"--precision {precision!r}: expected auto, fp32, bf16 or fp16")
    if device.type == "cpu" and precision == "fp16":
        raise UserError("--precision fp16 is for CUDA; on CPU use fp32 or bf16")
    return DTYPES[precision]


def dtype_name(dtype: torch.dtype) -> str:
    return {value: key for key, value in DTYPES.items()}[dtype]


def batch_indices(lengths: list[int], tokens_per_batch: int) -> list[list[int]]:
    """Indices grouped by fair-esm's rule: sorted by length, max_len * batch_size <= tokens_per_batch."""
    placeholders = ["A" * length for length in lengths]  # get_batch_indices only looks at len()
    return FastaBatchedDataset(list(range(len(lengths))), placeholders).get_batch_indices(tokens_per_batch)


# -- forward ---------------------------------------------------------------------------------------------------------
def _fp32_rotary_tables(rotary: torch.nn.Module, inv_freq: torch.Tensor) -> None:
    """Make a half-precision model's rotary embedding compute its angles in float32.

    fair-esm builds positions as `arange(T).type_as(inv_freq)`: after `model.to(bfloat16)` positions above 256 are
    rounded (bf16 keeps 8 significant bits), so residues far apart get the same phase. Same tables as fair-esm's
    `_update_cos_sin_tables`, computed in float32 and cast to the input's dtype at the end.
    """
    rotary.inv_freq = inv_freq.float()

    def update_tables(x: torch.Tensor, seq_dimension: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        seq_len = x.shape[seq_dimension]
        cached = rotary._cos_cached
        if seq_len != rotary._seq_len_cached or cached is None or cached.device != x.device or cached.dtype != x.dtype:
            rotary._seq_len_cached = seq_len
            positions = torch.arange(seq_len, device=x.device, dtype=torch.float32)
            freqs = torch.einsum("i,j->ij", positions, rotary.inv_freq)
            angles = torch.cat((freqs, freqs), dim=-1)  # (T, head_dim)
            rotary._cos_cached = angles.cos()[None, :, :].to(x.dtype)
            rotary._sin_cached = angles.sin()[None, :, :].to(x.dtype)
        return rotary._cos_cached, rotary._sin_cached

    rotary._update_cos_sin_tables = update_tables


class EsmTeacher:
    """A loaded ESM-2 model on its device, with the two computations stage one needs."""

    def __init__(self, model: "esm.ESM2", alphabet: "esm.data.Alphabet", info: TeacherInfo,
                 device: torch.device, dtype: torch.dtype):
        self.info = info
        self.device = device
        self.dtype = dtype
        self.alphabet = alphabet
        # The regression stays in float32 whatever the model's dtype (the contact head's features are small
        # differences of attention sums).
        self.regression_weight = model.contact_head.regression.weight.detach().float().reshape(-1).to(device)
        self.regression_bias = model.contact_head.regression.bias.detach().float().reshape(()).to(device)
        rotary_freqs = [layer.self_attn.rot_emb.inv_freq.detach().float().clone() for layer in model.layers]
        self.model = model.eval().to(device=device, dtype=dtype)
        if dtype != torch.float32:
            for layer, inv_freq in zip(self.model.layers, rotary_freqs):
                _fp32_rotary_tables(layer.self_attn.rot_emb, inv_freq.to(device))
        self._lookup = np.full(128, alphabet.unk_idx, dtype=np.int64)
        for token, index in alphabet.tok_to_idx.items():
            if len(token) == 1:
                self._lookup[ord(token)] = index

    @property
    def num_layers(self) -> int:
        return self.info.num_layers

    def resolve_layers(self, layers: list[int]) -> list[int]:
        """1-based layer numbers, negative ones counted from the end (-1 = last); sorted, unique."""
        resolved = set()
        for layer in layers:
            number = layer + self.num_layers + 1 if layer < 0 else layer
            if not 1 <= number <= self.num_layers:
                raise UserError(f"--attention-layers {layer}: this model has layers 1..{self.num_layers}")
            resolved.add(number)
        return sorted(resolved)

    def _tokens(self, texts: list[str]) -> torch.Tensor:
        """(B, T) int64 on the device: BOS + text + EOS, right-padded.

        On CUDA the upload is asynchronous (pinned host memory, non_blocking): a pageable copy would wait for
        the device to finish the previous batch, and the host could not queue this one behind it.
        """
        width = max(len(text) for text in texts) + 2
        tokens = np.full((len(texts), width), self.alphabet.padding_idx, dtype=np.int64)
        for row, text in enumerate(texts):
            tokens[row, 0] = self.alphabet.cls_idx
            tokens[row, 1:len(text) + 1] = self._lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
            tokens[row, len(text) + 1] = self.alphabet.eos_idx
        host = torch.from_numpy(tokens)
        if self.device.type == "cuda":
            return host.pin_memory().to(self.device, non_blocking=True)
        return host.to(self.device)

    def _embed(self, tokens: torch.Tensor, has_padding: bool | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """fair-esm ESM2.forward's embedding stage, verbatim: (B, T, E) input of the first layer.

        has_padding: whether any row is padded, when the caller knows it from the lengths; fair-esm asks the
        device (`padding_mask.any()`), which on CUDA waits for every queued kernel.
        """
        model = self.model
        padding_mask = tokens.eq(model.padding_idx)  # (B, T)
        x = model.embed_scale * model.embed_tokens(tokens)
        if model.token_dropout:
            x.masked_fill_((tokens == model.mask_idx).unsqueeze(-1), 0.0)
            mask_ratio_train = 0.15 * 0.8
            src_lengths = (~padding_mask).sum(-1)
            mask_ratio_observed = (tokens == model.mask_idx).sum(-1).to(x.dtype) / src_lengths
            x = x * (1 - mask_ratio_train) / (1 - mask_ratio_observed)[:, None, None]
        x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
        if has_padding is None:
            has_padding = bool(padding_mask.any())
        return x, (padding_mask if has_padding else None)

    def residue_embeddings(self, sequences: list[str]) -> list[np.ndarray]:
        """Final-layer (after emb_layer_norm_after) embeddings, float32 (L, D) per sequence, no BOS/EOS rows."""
        return [to_host(rows) for rows in self.residue_embeddings_on_device(sequences)]

    @torch.no_grad()
    def residue_embeddings_on_device(self, sequences: list[str]) -> list[torch.Tensor]:
        """`residue_embeddings` left on the device, queued without waiting for it (see `to_host`)."""
        tokens = self._tokens(sequences)
        x, padding_mask = self._embed(tokens, has_padding=len({len(seq) for seq in sequences}) > 1)
        x = x.transpose(0, 1)  # (B, T, E) => (T, B, E)
        for layer in self.model.layers:
            x, _ = layer(x, self_attn_padding_mask=padding_mask)
        x = self.model.emb_layer_norm_after(x).transpose(0, 1).float()  # (T, B, E) => (B, T, E)
        return [x[row, 1:len(seq) + 1] for row, seq in enumerate(sequences)]

    def pair_maps(self, pairs: list[tuple[str, str]], linker: str, attention_layers: list[int]
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(contact, attention), float32 (La, Lb) each, for every (A, B) run as `BOS + A + linker + B + EOS`.

        contact: the A x B block of fair-esm's contact head; attention: the A x B block of attention averaged over
        heads and over `attention_layers` (1-based, resolved), symmetrised as (AB + BA^T) / 2.
        """
        return [(to_host(contact), to_host(attention))
                for contact, attention in self.pair_maps_on_device(pairs, linker, attention_layers)]

    @torch.no_grad()
    def pair_maps_on_device(self, pairs: list[tuple[str, str]], linker: str, attention_layers: list[int]
                            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`pair_maps` left on the device: nothing here waits for the device, so on CUDA this returns once the
        batch is queued, and the host can prepare the next batch (or copy the last one) while it runs."""
        layers = set(self.resolve_layers(attention_layers))
        heads = self.info.attention_heads
        tokens = self._tokens([a + linker + b for a, b in pairs])
        lengths = [len(a) + len(linker) + len(b) for a, b in pairs]
        # A and B inside the contact head's frame, which starts after BOS: A = [0, La), B = [La + linker, n)
        spans = [(slice(0, len(a)), slice(len(a) + len(linker), n)) for (a, b), n in zip(pairs, lengths)]
        logits = [torch.zeros(a.stop - a.start, b.stop - b.start, device=self.device) for a, b in spans]
        attention = [torch.zeros_like(block) for block in logits]

        # the transformer, layer by layer, fair-esm's modules
        x, padding_mask = self._embed(tokens, has_padding=len(set(lengths)) > 1)
        x = x.transpose(0, 1)  # (B, T, E) => (T, B, E)
        for index, layer in enumerate(self.model.layers):
            x, attn = layer(x, self_attn_padding_mask=padding_mask, need_head_weights=True)
            attn = attn.transpose(0, 1)  # (H, B, T, T) => (B, H, T, T), a view
            weight = self.regression_weight[index * heads:(index + 1) * heads]  # (H,)
            for row, ((span_a, span_b), n) in enumerate(zip(spans, lengths)):
                # The contact head sees S = a + a^T over residues and linker only (no BOS, EOS or padding);
                # APC subtracts r_i r_j / total, r = row sums of S. Slicing the sequence's own square keeps
                # padding out of the sums, so the result does not depend on the batch.
                inner = attn[row, :, 1:n + 1, 1:n + 1].float()  # (H, n, n): a view (a copy for bf16/fp16 models)
                rows = inner.sum(-1) + inner.sum(-2)  # (H, n)
                scale = weight / rows.sum(-1)  # (H,): regression weight over the channel's total
                block_ab, block_ba = inner[:, span_a, span_b], inner[:, span_b, span_a]
                # sum_h w_h (S_h - r_h r_h^T / total_h) on the A x B block: two head-weighted sums and a rank-H
                # product instead of an (H, La, Lb) APC term
                logits[row] += (torch.tensordot(weight, block_ab, dims=1) + torch.tensordot(weight, block_ba, dims=1).T
                                - (rows[:, span_a] * scale[:, None]).T @ rows[:, span_b])
                if index + 1 in layers:
                    attention[row] += (block_ab.mean(0) + block_ba.mean(0).T) / 2
            del attn, inner, block_ab, block_ba  # free this layer's (H, T, T) before the next layer allocates its own
        return [(torch.sigmoid(logit + self.regression_bias), (att / len(layers)).clamp(0.0, 1.0))
                for logit, att in zip(logits, attention)]


def to_host(values: torch.Tensor) -> np.ndarray:
    """A device result as a float32 numpy array; on CUDA this waits until the kernels that produce it have run."""
    return values.cpu().numpy()


class HostCopy:
    """Device results on their way to host memory, queued right behind the kernels that produce them.

    On CUDA the results are gathered into one flat tensor and copied into pinned host memory without waiting; an
    event marks the copy's end. Queue this before the next batch's pass, so the copy waits for this batch only
    (a plain `.cpu()` issued later would wait for everything queued since). `arrays()` waits for the event and
    returns float32 numpy arrays shaped like the inputs. On CPU nothing is copied: the arrays share the tensors'
    memory.
    """

    def __init__(self, tensors: list[torch.Tensor]):
        self._shapes = [tuple(values.shape) for values in tensors]
        self._event = None
        if tensors and tensors[0].device.type == "cuda":
            flat = torch.cat([values.reshape(-1) for values in tensors])
            self._host = [torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)]
            self._host[0].copy_(flat, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = list(tensors)

    def arrays(self) -> list[np.ndarray]:
        if self._event is None:
            return [values.numpy() for values in self._host]
        self._event.synchronize()
        flat = self._host[0].numpy()
        sizes = [int(np.prod(shape)) for shape in self._shapes]
        starts = np.cumsum([0] + sizes)
        return [flat[start:start + size].reshape(shape) for start, size, shape in zip(starts, sizes, self._shapes)]


# -- random teachers (tests, demo, benchmarks) ---------------------------------------------------------------
# Real ESM-2 architectures (layers, embed_dim, heads), for benchmarks with random weights of the real shape.
ARCHITECTURES = {
    "t6": (6, 320, 20),
    "t12": (12, 480, 20),
    "t30": (30, 640, 20),
    "t33": (33, 1280, 20),
}


def write_random_esm2(directory: str | Path, num_layers: int = 2, embed_dim: int = 32, attention_heads: int = 4,
                      seed: int = 0, name: str | None = None, contact_scale: float = 1.0) -> Path:
    """Write a random ESM-2 checkpoint and its contact regression; returns the path of the model file.

    contact_scale multiplies the random regression weights (larger gives contact maps further from 0.5).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = name or f"esm2_t{num_layers}_test"
    torch.manual_seed(seed)
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = esm.model.esm2.ESM2(num_layers=num_layers, embed_dim=embed_dim, attention_heads=attention_heads, alphabet=alphabet,
                 token_dropout=True)
    state = model.state_dict()
    regression = {name_: state.pop(name_).clone() * (contact_scale if name_.endswith("weight") else 1.0)
                  for name_ in ("contact_head.regression.weight", "contact_head.regression.bias")}
    stored = {}
    for key, value in state.items():
        prefix = "encoder." if key.startswith("lm_head.") else "encoder.sentence_encoder."
        stored[prefix + key] = value.clone()
    cfg = argparse.Namespace(encoder_layers=num_layers, encoder_embed_dim=embed_dim,
                             encoder_attention_heads=attention_heads, token_dropout=True,
                             encoder_ffn_embed_dim=4 * embed_dim, arch="esm2")
    model_path = directory / f"{name}.pt"
    torch.save({"cfg": {"model": cfg}, "model": stored, "random_weights": True,
                "note": f"random ESM-2 weights (seed {seed}) written by protein-loftr; not a trained model"},
               model_path)
    torch.save({"model": regression}, directory / f"{name}-contact-regression.pt")
    return model_path


def write_random_teacher(config: "RandomTeacherConfig") -> Path:
    """`random-teacher`: write a random-weight ESM-2 of `config.arch` into `config.out`; returns the model file,
    which `precompute --model` takes as it is (its -contact-regression.pt lies beside it)."""
    if config.arch not in ARCHITECTURES:
        raise UserError(f"--arch {config.arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    num_layers, embed_dim, heads = ARCHITECTURES[config.arch]
    name = f"esm2_{config.arch}_random"
    directory = Path(config.out)
    targets = [directory / f"{name}.pt", directory / f"{name}-contact-regression.pt"]
    check_outputs({str(path): path for path in targets}, None, config.overwrite)
    return write_random_esm2(directory, num_layers=num_layers, embed_dim=embed_dim, attention_heads=heads,
                             seed=config.seed, name=name)
