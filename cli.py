"""protein-loftr command line. Thin: each command parses its options into the library's config dataclass (whose
defaults are the only defaults: every option's default is read from its field) and calls one library function.

The project's own errors (`data.errors.UserError` and its subclasses) and the operating system's file errors
(missing file, no permission, disk full, read-only) become a one-line message and exit code 2; anything else is
a bug: its traceback is shown and the exit code is 1. `--debug` shows the traceback of user errors too.

    python cli.py --help
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

# Config records only: they import no torch, h5py or fair-esm (each command imports its library function late).
from data.device import DEVICE_HELP
from data.errors import UserError, os_error_cause
from data.negatives import NegativesConfig
from data.splits import SPLIT_METHODS, SplitConfig
from data.synth import BACKGROUNDS, TEACHER_PRESETS, SynthConfig
from data.synth import PRESETS as SYNTH_PRESETS
from data.version import TOOL_VERSION
from demo import DemoConfig
from student.config import (CE_NORMS, HEADS, MAP_LOSSES, MAP_NORMS, MAP_PAIRS, MAP_TARGETS, PAIR_TERMS, POOLS,
                            SPLITS, EvaluateConfig, ModelConfig, PredictConfig, TrainConfig)
from student.evaluation.config import AblateConfig, EvaluateMapsConfig
from student.screening.config import COARSE_PRECISIONS, ScreenConfig
from teacher_cache.teachers.config import PrecomputeConfig, RandomTeacherConfig, StructureCacheConfig

console = Console(stderr=True)  # progress, reports, warnings and errors
stdout = Console()  # what a command is asked to print (`cache info`): it can be piped or redirected
log = logging.getLogger("protein_loftr")


def user_message(exc: BaseException) -> str | None:
    """The message of an error the user can fix, or None for a bug. OS errors name the path and the cause (HDF5's
    errors too, whose errno is only in their text)."""
    if isinstance(exc, UserError):
        return str(exc)
    cause = os_error_cause(exc)
    if cause is not None:
        text, name = cause
        names = [str(n) for n in (getattr(exc, "filename", None), getattr(exc, "filename2", None)) if n is not None]
        where = " -> ".join(names) or name
        return f"{where}: {text}" if where else text
    return None


class _Cli(click.Group):
    """Turns the project's errors into messages and exit codes, once, for every command."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
            message = user_message(exc)
            if message is None or ctx.params.get("debug"):
                if message is None:
                    console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (a bug: please report "
                                  "it with the traceback below)")
                raise
            console.print(f"[bold red]error:[/] {message}")
            sys.exit(2)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(TOOL_VERSION, prog_name="protein-loftr")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(debug: bool, verbose: bool) -> None:
    """Protein-LoFTR: distil ESM-2's inter-chain maps into a cheap CNN PPI student.

    \b
    Stage one (GPU box, once):  precompute  -> teacher cache (HDF5)
    Stage two (laptop or GPU):  train, evaluate, predict, screen
    Start with:                 python cli.py demo --out demo_out
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)], force=True)


# == options: every default read from its config field =========================================================

def field_default(config: type, name: str) -> Any:
    """The default of one field of a config dataclass (the one place defaults live)."""
    for item in dataclasses.fields(config):
        if item.name == name:
            if item.default is not dataclasses.MISSING:
                return item.default
            if item.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                return item.default_factory()  # type: ignore[misc]
            raise TypeError(f"{config.__name__}.{name} has no default")
    raise TypeError(f"{config.__name__} has no field {name}")


def _comma_list(kind: type) -> Callable:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected comma-separated {kind.__name__} values, got {value!r}") from None
    return convert


def option(config: type, name: str, *decls: str, show: Callable[[Any], Any] | None = None, **kwargs):
    """A click option for `config.name` whose default is the field's default.

    Tuples are shown and typed as comma-separated lists; `show` formats other defaults for the command line."""
    default = field_default(config, name)
    if show is not None:
        default = show(default)
    elif isinstance(default, tuple):
        kwargs.setdefault("callback", _comma_list(type(default[0]) if default else str))
        default = ",".join(map(str, default))
    if isinstance(default, bool) and default is False and "type" not in kwargs:
        kwargs["is_flag"] = True
    else:
        kwargs.setdefault("show_default", True)
    return click.option(*(decls or ("--" + name.replace("_", "-"),)), name, default=default, **kwargs)


def options(*decorators: Callable) -> Callable:
    """Several option decorators as one (shared option groups)."""
    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function
    return apply


def build(config: type, params: dict[str, Any], **extra: Any):
    """`config` from the options whose names are its fields (and `extra`)."""
    names = {item.name for item in dataclasses.fields(config)}
    return config(**{k: v for k, v in params.items() if k in names}, **extra)


def pairs_option(help: str = "Pairs table: id_a id_b [label ...], tab- or space-separated.", required: bool = True):
    return click.option("--pairs", "pairs", required=required, type=click.Path(dir_okay=False), help=help)


def fasta_option(help: str = "Sequences of every id in --pairs.", required: bool = True):
    return click.option("--fasta", "fasta", required=required, type=click.Path(dir_okay=False), help=help)


def unlabelled_option():
    return click.option("--unlabelled-pairs", "unlabelled_pairs", type=click.Path(dir_okay=False), default=None,
                        help="Pairs table (id_a id_b; a label column is not read) whose teacher maps and embeddings "
                             "train the map and semantic terms only. Pairs with a validation or test protein are "
                             "left out.")


def device_option(config: type):
    return option(config, "device", help=DEVICE_HELP)


def overwrite_option(help: str = "Replace an existing output."):
    return click.option("--overwrite", "overwrite", is_flag=True, help=help)


def checkpoint_option(required: bool = True, help: str = "best.pt of a training run."):
    return click.option("--checkpoint", "checkpoint", required=required, type=click.Path(dir_okay=False), help=help)


def _metric(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


class _RateColumn(ProgressColumn):
    """Items per second of a task (rich's own speed column shows bytes)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "it")
        speed = task.speed or (task.completed / task.elapsed if task.elapsed else None)  # slow steps: whole-run mean
        return Text(f"{speed:.2f} {unit}/s" if speed else f"- {unit}/s", style="cyan")


def _staged_progress(labels: dict[str, str] | None = None):
    """A progress display with one bar per stage, and the `progress(stage, advance, total)` callback feeding it."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
    tasks: dict[str, TaskID] = {}

    def advance(stage: str, count: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task((labels or {}).get(stage, stage), total=total, unit=stage)
        bar.advance(tasks[stage], count)
    return bar, advance


def _counting_progress(description: str):
    """A transient bar and its `progress(done, total)` callback."""
    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                   transient=True)
    task = bar.add_task(description, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


# == stage one: precompute, random-teacher, cache ================================================================

@cli.command()
@pairs_option()
@fasta_option()
@click.option("--model", "model", required=True,
              help="fair-esm hub name (esm2_t6_8M_UR50D ... esm2_t48_15B_UR50D; downloaded once, needs internet) or "
                   "a local fair-esm .pt with its -contact-regression.pt beside it (see `random-teacher`).")
@click.option("--out", "out", required=True, type=click.Path(), help="Cache file to create or extend (HDF5).")
@option(PrecomputeConfig, "linker", show_default="25 x G", help="Residues placed between A and B; '' joins them.")
@option(PrecomputeConfig, "attention_layers", show=lambda v: ",".join(map(str, v)),
        help="Layers (1-based, comma-separated, negative from the end) averaged into the attention map.")
@option(PrecomputeConfig, "max_tokens", type=int,
        help="Context per forward pass (BOS/EOS included); longer pairs and chains are tiled into windows.")
@option(PrecomputeConfig, "tile_overlap", type=int, help="Residues shared by neighbouring windows when tiling.")
@option(PrecomputeConfig, "tokens_per_batch", show=lambda v: str(v) if v else "auto",
        help="Padded tokens per forward batch (sequences are length-sorted first); auto: fitted to the device's "
             "free memory (80% on CUDA, 50% of available RAM on CPU) for the longest input.")
@device_option(PrecomputeConfig)
@option(PrecomputeConfig, "precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
        help="auto: fp32 on CPU, bf16 on CUDA where supported (else fp16); bf16 also runs on CPU. The contact head "
             "runs in fp32.")
@option(PrecomputeConfig, "per_residue", help="Also store per-residue (L, D) embeddings of every protein.")
@option(PrecomputeConfig, "shard", show=lambda v: f"{v[0]}/{v[1]}",
        help="i/N: compute block i of N of the sorted work list (merge shards with `cache merge`).")
@overwrite_option("Replace an existing --out built with another teacher or settings (a compatible one is extended).")
@option(PrecomputeConfig, "checkpoint_seconds", type=float,
        help="Save finished work at least this often (a killed run resumes from there).")
def precompute(**params: Any) -> None:
    """Stage one: run ESM-2 over every pair (A + linker + B) and write the teacher cache.

    Stores per pair the inter-chain (A x B) blocks of the contact head and of the attention, and per protein
    the mean final-layer embedding. Re-running on the same or a larger pairs table computes only what is
    missing; a killed run resumes.

    \b
    Example:
      python cli.py precompute --pairs pairs.tsv --fasta seqs.fasta --model esm2_t33_650M_UR50D \\
          --out teacher.h5 --device cuda
    """
    from data.allocator import keep_freed_memory
    from teacher_cache.teachers.config import parse_layers, parse_shard, parse_tokens_per_batch
    from teacher_cache.teachers.precompute import run_precompute

    keep_freed_memory()  # faster on CPU: benchmarks/precompute.py measures it (its "reuse" rows)
    params.update(attention_layers=parse_layers(params["attention_layers"]), shard=parse_shard(params["shard"]),
                  tokens_per_batch=parse_tokens_per_batch(params["tokens_per_batch"]))
    bar, advance = _staged_progress()
    with bar:
        result = run_precompute(build(PrecomputeConfig, params), progress=advance)
    _report_precompute(result, params["shard"])


@cli.command("random-teacher")
@option(RandomTeacherConfig, "out", type=click.Path(file_okay=False), help="Folder to write the two files into.")
@option(RandomTeacherConfig, "arch", type=click.Choice(["t6", "t12", "t30", "t33"]),
        help="Architecture of fair-esm's ESM-2 of that depth (t6: 8M ... t33: 650M parameters).")
@option(RandomTeacherConfig, "seed", type=int)
@overwrite_option("Replace the files if they exist.")
def random_teacher(**params: Any) -> None:
    """Write a RANDOM-weight ESM-2 of a real architecture in fair-esm's file format, to try the pipeline offline.

    Writes esm2_ARCH_random.pt and its -contact-regression.pt; `precompute --model` takes the .pt. Its maps carry
    no biological signal, and every cache and student made from it says "random teacher".

    \b
    Example:
      python cli.py random-teacher --arch t6 --out esm_random
      python cli.py precompute --model esm_random/esm2_t6_random.pt --pairs pairs.tsv --fasta seqs.fasta --out c.h5
    """
    from teacher_cache.teachers.esm_runner import write_random_teacher

    path = write_random_teacher(build(RandomTeacherConfig, params))
    console.print(f"wrote {path} and its -contact-regression.pt: a [bold yellow]RANDOM-weight[/] ESM-2 "
                  f"({params['arch']}), for testing the pipeline only")


TEACHER_WARNINGS = {
    "synthetic": "SYNTHETIC TEACHER: maps are planted by a generator (oracle maps of a synthetic benchmark), not "
                 "predicted by a model",
    "structure": "STRUCTURE TEACHER: maps are contacts measured in experimental structures, not ESM-2 predictions",
}


@cli.group()
def cache() -> None:
    """Inspect, check and join teacher caches (HDF5 files written by `precompute`).

    \b
    Examples:
      python cli.py cache info teacher.h5
      python cli.py cache verify teacher.h5
      python cli.py cache merge teacher.h5 shard0.h5 shard1.h5
    """


@cache.command("info")
@click.argument("cache_path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (warnings go to stderr).")
def cache_info(cache_path: str, as_json: bool) -> None:
    """Summarise a cache on stdout: teacher, settings, storage, counts, size.

    \b
    Example:
      python cli.py cache info teacher.h5
      python cli.py cache info --json teacher.h5 > teacher-info.json
    """
    from teacher_cache import TeacherCache

    with TeacherCache.open(cache_path) as opened:
        info = opened.info()
    if as_json:
        import json

        click.echo(json.dumps(info, indent=2, sort_keys=True, default=str))
        _cache_warnings(info, console)
    else:
        _report_cache_info(info)


@cache.command("verify")
@click.argument("cache_path", type=click.Path(dir_okay=False))
def cache_verify(cache_path: str) -> None:
    """Check a cache's schema, index and every stored map.

    Checks the attributes and schema version, that the index is consistent (offsets contiguous, sizes, canonical
    and unique keys, each key the SHA-256 of its stored sequence, lengths, embedding shapes) and that every map
    decodes (finite, within [0, 1]). Exits with status 2 when a problem is found.

    \b
    Example:
      python cli.py cache verify teacher.h5
    """
    from teacher_cache.verify import verify_cache

    bar, progress = _counting_progress("decoding maps")
    with bar:
        report = verify_cache(cache_path, progress=progress)
    console.print(f"{report.path}: {report.n_pairs:,} pairs, {report.n_proteins:,} proteins, "
                  f"{report.cells_checked:,} map cells decoded")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    if report.ok:
        console.print("[bold green]OK[/]: no problems found")
    report.raise_if_problems()


@cache.command("merge")
@click.argument("out", type=click.Path(dir_okay=False))
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@overwrite_option("Replace OUT if it exists.")
def cache_merge(out: str, sources: tuple[str, ...], overwrite: bool) -> None:
    """Join caches of one teacher (shards, resumed parts) into OUT.

    The sources must share a fingerprint (same teacher and settings), as the outputs of `precompute --shard i/N`
    do. An entry present in several sources is taken once, from the first. OUT may be one of the sources.

    \b
    Example:
      python cli.py cache merge teacher.h5 shard0.h5 shard1.h5 shard2.h5
    """
    from teacher_cache import TeacherCache, merge_caches

    merged = merge_caches(list(sources), out, overwrite=overwrite)
    with TeacherCache.open(merged) as opened:
        console.print(f"wrote {merged}: {opened.n_pairs:,} pairs, {opened.n_proteins:,} proteins from "
                      f"{len(sources)} cache(s)")


# == stage two: train, evaluate, predict =========================================================================

# The settings of one training run, shared by `train` and `ablate` (whose config is a TrainConfig plus its grid).
training_options = options(
    option(TrainConfig, "map_loss", type=click.Choice(MAP_LOSSES),
           help="marginal: BCE of the student map's row and column maxima against the teacher's (which residues "
                "are interface); bce: every cell; rank: the teacher's top cells first; mse, kl."),
    option(TrainConfig, "map_target", type=click.Choice(MAP_TARGETS), help="Which teacher map the student's map "
                                                                           "learns."),
    option(TrainConfig, "map_norm", type=click.Choice(MAP_NORMS),
           help="mass: map loss / teacher map mass (sparse maps keep a useful weight); mean: average over cells."),
    option(TrainConfig, "alpha_map", type=float, help="Weight of the map loss."),
    option(TrainConfig, "beta_sem", type=float, help="Weight of the semantic (embedding cosine) loss."),
    option(TrainConfig, "map_pairs", type=click.Choice(MAP_PAIRS),
           help="Pairs whose maps enter the map loss: all, or positives only (by label)."),
    option(TrainConfig, "map_confidence", help="Weight each pair's map loss by the teacher map's peak."),
    option(TrainConfig, "map_rank_k", type=int, help="Teacher cells the rank map loss asks to rank first."),
    option(TrainConfig, "map_top_target", type=int,
           help="K > 0: the map loss learns each teacher map's K highest cells as 1 and the rest as 0 (0: off)."),
    option(TrainConfig, "ce_norm", type=click.Choice(CE_NORMS),
           help="With --unlabelled-pairs: a batch's cross-entropy over its labelled pairs is their sum over the batch "
                "size (batch: each label weighs what it weighs without unlabelled pairs) or their mean (labelled)."),
    option(TrainConfig, "epochs", type=int),
    option(TrainConfig, "batch_size", type=int),
    option(TrainConfig, "lr", type=float, help="AdamW peak learning rate."),
    option(TrainConfig, "weight_decay", type=float),
    option(TrainConfig, "warmup", type=float, help="Fraction of steps in linear warm-up, then cosine decay."),
    option(TrainConfig, "max_len", type=int,
           help="Training crops longer proteins (and their maps) to a random window; evaluation never crops."),
    option(TrainConfig, "patience", type=int, help="Stop after this many epochs without a better validation AUPR."),
    option(TrainConfig, "min_epochs", type=int,
           help="Never stop early before this many epochs (a map term can need 10-25 before the classifier "
                "learns: docs/results.md, section 2)."),
    option(TrainConfig, "map_first_epochs", type=int,
           help="Curriculum: the first N epochs train the teacher terms (map, semantic) alone; cross-entropy, the "
                "best epoch and early stopping start after them. Needs a teacher cache."),
    option(ModelConfig, "channels", help="Conv output channels, one per layer."),
    option(ModelConfig, "kernel_sizes", help="Odd conv kernel sizes, one per layer."),
    option(ModelConfig, "embed_dim", type=int),
    option(ModelConfig, "hidden", type=int, help="Hidden units of the classifier MLPs."),
    option(ModelConfig, "pool", type=click.Choice(POOLS),
           help="What the features head reads of each protein: max (which patterns occur), mean (how often: "
                "composition), attention (a learnt weighting of the residues), length (its log length), composition "
                "(the residue fractions), joined by +."),
    option(ModelConfig, "pair_terms", type=click.Choice(PAIR_TERMS),
           help="How the features head combines the two pooled proteins: sum, product, |difference|, joined by +."),
    option(ModelConfig, "pool_norm", "--pool-norm/--no-pool-norm",
           help="Standardise the pooled features (batch norm) before the features head."),
    option(TrainConfig, "balance_classes", "--balance-classes/--no-balance-classes",
           help="Weight positives by negatives / positives of the training part."),
    device_option(TrainConfig),
    option(TrainConfig, "workers", type=int, help="DataLoader worker processes."),
)


def train_config(params: dict[str, Any], config: type = TrainConfig, **extra: Any) -> TrainConfig:
    """A TrainConfig (or AblateConfig) from the options: the model's options go into its ModelConfig."""
    model_fields = {item.name for item in dataclasses.fields(ModelConfig)}
    model = build(ModelConfig, {k: v for k, v in params.items() if k in model_fields})
    return build(config, {k: v for k, v in params.items() if k not in model_fields}, model=model, **extra)


@cli.command()
@pairs_option("Pairs table with labels (and optionally a split column).")
@fasta_option()
@click.option("--cache", "cache", type=click.Path(dir_okay=False),
              help="Teacher cache from `precompute` (without one: labels only, no map or semantic loss).")
@unlabelled_option()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Run directory: best.pt, last.pt, metrics.json, history.csv, config.json.")
@option(ModelConfig, "head", type=click.Choice(HEADS),
        help="features: pooled A and B features -> MLP; map: statistics of the interaction map; both.")
@training_options
@option(TrainConfig, "split", type=click.Choice(SPLITS),
        help="auto: the pairs file's split column if any, else protein-disjoint.")
@option(TrainConfig, "valid_frac", type=float)
@option(TrainConfig, "test_frac", type=float)
@option(TrainConfig, "n_train", type=int, help="Seeded stratified subsample of the training part.")
@option(TrainConfig, "seed", type=int)
@option(TrainConfig, "resume", help="Continue the run in --out from its last.pt.")
@overwrite_option("Replace the run in --out.")
def train(**params: Any) -> None:
    """Stage two: train the CNN student on labels plus the teacher cache's maps and embeddings.

    Loss = class-weighted cross-entropy + alpha-map x map loss + beta-sem x semantic loss. Early stopping on
    validation AUPR; the decision threshold is picked on validation. A killed run continues with --resume.

    \b
    Example:
      python cli.py train --pairs pairs.tsv --fasta seqs.fasta --cache teacher.h5 --out run1 --epochs 30
    """
    from data.allocator import keep_freed_memory
    from student.trainer import train as run_training

    config = train_config(params)
    keep_freed_memory()  # faster on CPU: benchmarks/train.py --keep-heap measures it
    _report_training(run_training(config, progress=True))


@cli.command()
@checkpoint_option()
@pairs_option("Labelled pairs table.")
@fasta_option()
@click.option("--cache", "cache", type=click.Path(dir_okay=False),
              help="Teacher cache: also report the agreement of the student's maps with the teacher's.")
@option(EvaluateConfig, "split", type=click.Choice(["train", "valid", "test", "all"]),
        help="The part to score (the split column, or the training run's split redone); all: every pair. By "
             "default the test part when the pairs file has a split column, else all pairs.")
@option(EvaluateConfig, "baselines", help="Also fit and score trivial baselines on the training part.")
@option(EvaluateConfig, "batch_size", type=int)
@device_option(EvaluateConfig)
@option(EvaluateConfig, "json", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
@overwrite_option("Replace an existing --json.")
def evaluate(**params: Any) -> None:
    """Metrics of a trained student: AUROC, AUPR, F1, MCC, accuracy (threshold picked on validation), map agreement.

    Scores the test part by default when the pairs file has a split column (--split chooses another part, or all).

    \b
    Example:
      python cli.py evaluate --checkpoint run1/best.pt --pairs pairs.tsv --fasta seqs.fasta \\
          --cache teacher.h5 --split test --baselines
    """
    from student.evaluation.evaluate import evaluate as run_evaluation

    result = run_evaluation(build(EvaluateConfig, params))
    _report_evaluation(result)
    if params["json"]:
        console.print(f"wrote {params['json']}")


@cli.command()
@checkpoint_option()
@pairs_option("Pairs table (labels optional).")
@fasta_option()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Predictions TSV: id_a id_b probability predicted [label].")
@option(PredictConfig, "maps", type=click.Path(dir_okay=False),
        help="Also write each pair's interaction map (probabilities) to this HDF5 file.")
@option(PredictConfig, "plot", type=click.Path(file_okay=False), help="Write heatmap PNGs into this folder.")
@option(PredictConfig, "plot_max", type=int, help="Heatmaps of at most this many pairs.")
@click.option("--cache", "cache", type=click.Path(dir_okay=False),
              help="Teacher cache: heatmaps show the teacher's map beside the student's.")
@option(PredictConfig, "batch_size", type=int)
@device_option(PredictConfig)
@overwrite_option("Replace an existing --out or --maps and write into a non-empty --plot folder.")
def predict(**params: Any) -> None:
    """Interaction probabilities (and maps) of pairs from a trained student; no teacher needed.

    \b
    Example:
      python cli.py predict --checkpoint run1/best.pt --pairs new.tsv --fasta seqs.fasta --out preds.tsv \\
          --maps maps.h5 --plot heatmaps
    """
    from student.predict import run_predict

    summary = run_predict(build(PredictConfig, params))
    console.print(f"wrote {summary['out']}: {summary['pairs']} pairs, {summary['predicted_positive']} predicted to "
                  f"interact (threshold {summary['threshold']:.3f})")
    if "maps" in summary:
        console.print(f"wrote {summary['maps']}")
    if "plots" in summary:
        console.print(f"wrote {len(summary['plots'])} heatmap(s) to {params['plot']}")


# == evidence: synth, ablate =====================================================================================

@cli.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write.")
@option(SynthConfig, "n_pairs", type=int, help="Pairs to draw (all parts together).")
@option(SynthConfig, "families", type=int, help="Motif families (complementary motif pairs).")
@option(SynthConfig, "motif_len", type=int, help="Residues per motif (contact block side).")
@option(SynthConfig, "min_len", type=int, help="Shortest protein.")
@option(SynthConfig, "max_len", type=int, help="Longest protein.")
@option(SynthConfig, "pos_frac", type=float, help="Fraction of positive pairs.")
@option(SynthConfig, "valid_frac", type=float, help="Fraction of pairs in the valid part.")
@option(SynthConfig, "test_frac", type=float, help="Fraction of pairs in the test part.")
@option(SynthConfig, "embedding_dim", type=int, help="Size of the oracle teacher's embeddings.")
@option(SynthConfig, "attention_noise", type=float, help="Background noise of the oracle attention map.")
@option(SynthConfig, "seed", type=int, help="Seed of everything drawn.")
@option(SynthConfig, "mutation_rate", type=float, help="Per-residue substitution rate of every planted motif copy.")
@option(SynthConfig, "decoy_motifs", type=int, help="Motifs of no family (they meet nothing).")
@option(SynthConfig, "decoys_per_protein", type=int, help="Decoy copies planted in every protein.")
@option(SynthConfig, "background", type=click.Choice(BACKGROUNDS), help="Background residue composition.")
@option(SynthConfig, "teacher_discrimination", type=float,
        help="Teacher block strength on negatives relative to positives (0: oracle, 1: cannot tell).")
@option(SynthConfig, "teacher_recall", type=float, help="Share of true contact cells the teacher marks.")
@option(SynthConfig, "teacher_strength_min", type=float, help="Block strength per pair ~ U(this, 1).")
@option(SynthConfig, "teacher_decoys", type=int, help="False (decoy) blocks per teacher map.")
@option(SynthConfig, "teacher_decoy_strength", type=float, help="Strength of the decoy blocks (x U(0.5, 1)).")
@option(SynthConfig, "teacher_offset", type=int, help="The teacher's block is shifted by up to this many residues.")
@option(SynthConfig, "teacher_noise", type=float, help="Teacher background noise: + this x U(0,1)^2 per cell.")
@click.option("--preset", "preset", type=click.Choice(sorted(SYNTH_PRESETS)),
              help="Generator preset (hard: docs/results.md section 2); options given explicitly win.")
@click.option("--teacher-preset", "teacher_preset", type=click.Choice(list(TEACHER_PRESETS)),
              help="Teacher preset, oracle .. useless; options given explicitly win.")
@overwrite_option("Replace existing files in --out.")
@click.pass_context
def synth(ctx: click.Context, out: str, overwrite: bool, preset: str | None, teacher_preset: str | None,
          **params: Any) -> None:
    """Write a planted-interface benchmark: seqs.fasta, pairs.tsv (with a split column) and an oracle cache.h5.

    Positive pairs carry complementary motifs whose contact block is planted; negatives carry motifs that do not
    match. The cache is the exact teacher-cache format, marked teacher=synthetic (not ESM-2).

    \b
    Example:
        python cli.py synth --out synth_data --n-pairs 2500 --seed 0
    """
    from teacher_cache.teachers.synthetic import make_synthetic

    for values in (SYNTH_PRESETS.get(preset or "", {}), TEACHER_PRESETS.get(teacher_preset or "", {})):
        for name, value in values.items():
            if ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT:
                params[name] = value
    config = build(SynthConfig, params)
    bar = Progress(console=console, transient=True)
    with bar:
        task = bar.add_task("drawing pairs and writing the oracle cache", total=config.n_pairs)
        outputs = make_synthetic(config, out, overwrite=overwrite, progress=lambda n: bar.advance(task, n))
    for part, count in outputs.counts.items():
        console.print(f"{part:>5}: {count['pairs']} pairs, {count['positives']} positive")
    console.print(f"planted contacts fill {100 * outputs.contact_density:.2f}% of a positive pair's map")
    if outputs.quality is not None:
        q = outputs.quality
        console.print(f"teacher quality against the truth: map top-L/5 precision {q['teacher_p_l5']:.3f} "
                      f"(positives), AUPR of the map maximum as a pair score {q['teacher_aupr']:.3f} "
                      f"(AUROC {q['teacher_auroc']:.3f})")
    console.print(f"wrote {outputs.fasta}, {outputs.pairs}, {outputs.cache} (teacher=synthetic, seed {config.seed})")


@cli.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True),
              help="Directory written by `synth` (seqs.fasta, pairs.tsv, cache.h5).")
@pairs_option("Pairs table with label and split columns.", required=False)
@fasta_option("FASTA of the pairs' proteins.", required=False)
@click.option("--cache", "cache", type=click.Path(dir_okay=False), help="Teacher cache.")
@unlabelled_option()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Run directory (resumed if it exists).")
@option(AblateConfig, "heads")
@option(AblateConfig, "losses")
@option(AblateConfig, "n_train", help="Training-set sizes (seeded stratified subsamples of the train part).")
@option(AblateConfig, "seeds")
@training_options
@option(AblateConfig, "threads", type=int, help="torch threads (default: torch's choice).")
@click.option("--report-only", is_flag=True, help="Only rewrite summary.md and the plot from OUT/results.csv.")
def ablate(data_dir: str | None, report_only: bool, **params: Any) -> None:
    """Train a grid of students (head x loss terms x training-set size x seed) on one cache and fixed split.

    Every run shares `train`'s settings (the same options and defaults); the grid sets each run's head, loss
    terms, training-set size and seed. Writes OUT/results.csv (one row per run; rows already there are skipped on
    a re-run), OUT/summary.md (mean ± std over seeds) and OUT/learning_curve.png.

    \b
    Example:
        python cli.py synth --out synth_data
        python cli.py ablate --data synth_data --out ablation --n-train 500 --seeds 0,1,2
    """
    from student.evaluation.ablate import data_dir_inputs, run_ablation, write_report

    if report_only:
        summary, plot = write_report(params["out"])
        console.print(summary.read_text())
        console.print(f"wrote {summary}, {plot}")
        return
    params.update(data_dir_inputs(data_dir, params["pairs"], params["fasta"], params["cache"]))
    config = train_config(params, AblateConfig)

    def report(spec, row) -> None:
        if row is None:
            console.print(f"[dim]run {spec.name} ...[/]")
        else:
            console.print(f"{spec.name}: test AUPR {row['aupr']}, AUROC {row['auroc']}, "
                          f"map top-L/5 {row['map_top_l5'] or '-'} ({row['seconds']} s)")

    result = run_ablation(config, progress=report)
    console.print(f"{result.ran} run(s) done, {result.skipped} already in {result.results_csv}")
    console.print(result.summary_md.read_text())
    console.print(f"wrote {result.results_csv}, {result.summary_md}, {result.plot_png}")


# == evaluation controls: split, negatives =======================================================================

@cli.command()
@click.option("--pairs", "pairs", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Pairs table (id_a id_b label).")
@click.option("--fasta", "fasta", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Sequences (FASTA).")
@option(SplitConfig, "by", type=click.Choice(SPLIT_METHODS),
        help="random: by pair (leaks proteins; never evidence); protein: by sequence content; homology: by MMseqs2 "
             "homology group.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Split pairs table to write.")
@option(SplitConfig, "test_frac", type=float, help="Target fraction of pairs in the test part.")
@option(SplitConfig, "valid_frac", type=float, help="Target fraction of pairs in the valid part.")
@option(SplitConfig, "seed", type=int, help="Seed of the assignment.")
@option(SplitConfig, "min_seq_id", type=float, help="Homology: MMseqs2 identity threshold.")
@option(SplitConfig, "coverage", type=float, help="Homology: MMseqs2 coverage of both sequences.")
@option(SplitConfig, "threads", type=int, help="Homology: MMseqs2 threads.")
@click.option("--drop-conflicts", is_flag=True,
              help="Drop every row of a sequence pair given with both labels (default: an error naming both lines).")
@overwrite_option("Replace an existing --out and OUT.stats.json.")
def split(pairs: str, fasta: str, out: str, drop_conflicts: bool, overwrite: bool, **params: Any) -> None:
    """Split a pairs table into train/valid/test and write it with a split column (plus OUT.stats.json).

    protein and homology splits keep every protein (identical sequences under any id are one protein) or every
    homology group on one side; pairs that straddle two parts are dropped and counted.

    \b
    Example:
        python cli.py split --pairs pairs.tsv --fasta seqs.fasta --by homology --out split.tsv
    """
    from data.splits import split_file

    config = build(SplitConfig, params)
    with console.status("clustering with MMseqs2" if config.by == "homology" else "splitting"):
        run = split_file(pairs, fasta, out, config, drop_conflicts=drop_conflicts, overwrite=overwrite)
    _report_split(run, pairs, out, config)


@cli.command()
@click.option("--pairs", "pairs", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Positive pairs (id_a id_b [label]); rows labelled 0 are ignored.")
@click.option("--fasta", "fasta", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Sequences (FASTA).")
@option(NegativesConfig, "ratio", type=float, help="Negatives per positive.")
@option(NegativesConfig, "strategy", type=click.Choice(["random", "degree-balanced"]),
        help="random: uniform over the FASTA; degree-balanced: each protein's negatives proportional to its "
             "positives.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Pairs table to write.")
@option(NegativesConfig, "seed", type=int, help="Seed of the draw.")
@overwrite_option("Replace an existing --out and OUT.stats.json.")
def negatives(pairs: str, fasta: str, out: str, overwrite: bool, **params: Any) -> None:
    """Write the positives (label 1) plus sampled negatives (label 0); OUT.stats.json holds the balance.

    No negative is a known positive in either orientation (compared by sequence, not id), none repeats.

    \b
    Example:
        python cli.py negatives --pairs positives.tsv --fasta seqs.fasta --ratio 10 --out pairs.tsv
    """
    from data.negatives import negatives_file

    config = build(NegativesConfig, params)
    with console.status("drawing negatives"):
        result, stats_path = negatives_file(pairs, fasta, out, config, overwrite=overwrite)
    _report_negatives(result.stats, config, pairs, out, stats_path)


# == structures: structure-cache, evaluate-maps ==================================================================

@cli.command("structure-cache")
@option(StructureCacheConfig, "structures", required=True, type=click.Path(dir_okay=False), show_default=False,
        help="Manifest TSV: id_a id_b structure_a structure_b [chains_a chains_b] (paths relative to it; chains "
             "comma-separated, '-' for all).")
@option(StructureCacheConfig, "out", required=True, type=click.Path(dir_okay=False), show_default=False,
        help="Cache file to write (HDF5).")
@option(StructureCacheConfig, "fasta", type=click.Path(dir_okay=False),
        help="Sequences of the ids; each structure is aligned to its id's sequence.")
@option(StructureCacheConfig, "fasta_out", type=click.Path(dir_okay=False),
        help="Write the structures' own sequences here (without --fasta).")
@option(StructureCacheConfig, "cutoff", type=float, help="Contact: C-beta distance below this (angstrom).")
@option(StructureCacheConfig, "min_identity", type=float,
        help="Fail when a structure matches its sequence worse than this (fraction of aligned letters).")
@option(StructureCacheConfig, "negatives", type=click.Path(dir_okay=False),
        help="Pairs table whose label-0 pairs are added with all-zero maps (non-complexes).")
@overwrite_option("Replace an existing --out or --fasta-out.")
def structure_cache(**params: Any) -> None:
    """Write a teacher cache of TRUE inter-chain contacts read from PDB / mmCIF structures.

    The `contact` map is 1 where C-beta atoms (C-alpha for glycine) are closer than --cutoff, 0 elsewhere and 0
    where a residue has no coordinates; `attention` holds a soft distance map that is exactly 0 on those
    unobserved cells. Protein embeddings are amino-acid compositions, not ESM embeddings: train with
    --beta-sem 0 on a structure cache.

    \b
    Example:
      python cli.py structure-cache --structures complexes.tsv --fasta-out seqs.fasta --out structure.h5
    """
    from teacher_cache.teachers.structure import build_structure_cache

    bar, progress = _counting_progress("reading structures")
    with bar:
        report = build_structure_cache(build(StructureCacheConfig, params), progress=progress)
    console.print(f"[bold]{report.out}[/]: {report.pairs} sequence pairs from {report.complexes} complexes "
                  f"({report.merged_duplicates} repeated pairs united) and {report.negatives} negatives with "
                  f"all-zero maps, {report.proteins} proteins, "
                  f"{report.contacts} contact cells, {report.observed_fraction:.1%} of cells observed")
    if report.fasta_out:
        console.print(f"wrote the structures' sequences to {report.fasta_out}")
    console.print("[yellow]note:[/] embeddings are residue compositions, not ESM embeddings: use --beta-sem 0")


@cli.command("evaluate-maps")
@option(EvaluateMapsConfig, "structures", required=True, type=click.Path(dir_okay=False), show_default=False,
        help="Manifest TSV of complexes (as for structure-cache).")
@option(EvaluateMapsConfig, "cache", type=click.Path(dir_okay=False), help="Teacher cache whose maps to score.")
@checkpoint_option(required=False, help="Student checkpoint whose maps to score.")
@option(EvaluateMapsConfig, "fasta", type=click.Path(dir_okay=False),
        help="Sequences the maps were computed for (default: the structures' own sequences).")
@option(EvaluateMapsConfig, "map_name", "--map", type=click.Choice(["contact", "attention"]), help="Cache map.")
@option(EvaluateMapsConfig, "plot", type=click.Path(file_okay=False), help="Folder for one PNG per complex.")
@option(EvaluateMapsConfig, "out", type=click.Path(dir_okay=False), help="Per-complex scores (TSV).")
@option(EvaluateMapsConfig, "cutoff", type=float, help="True contact: C-beta distance below this.")
@device_option(EvaluateMapsConfig)
@overwrite_option("Replace an existing --out and write into a non-empty --plot folder.")
def evaluate_maps_command(**params: Any) -> None:
    """Score a teacher's or a student's maps against the true contacts of experimental complexes.

    Per complex, on cells where both residues have coordinates: precision of the top-L/5 and top-10 cells,
    AUPR and interface-residue recall, each beside chance (the complex's contact density).

    \b
    Examples:
      python cli.py evaluate-maps --structures complexes.tsv --fasta seqs.fasta --cache teacher.h5
      python cli.py evaluate-maps --structures complexes.tsv --fasta seqs.fasta --checkpoint run/best.pt \\
          --out per_complex.tsv --plot maps/
    """
    from student.evaluation.evaluate_maps import evaluate_maps

    config = build(EvaluateMapsConfig, params)
    bar, progress = _counting_progress("evaluating maps")
    with bar:
        result = evaluate_maps(config, progress=progress)
    _report_evaluate_maps(result, config)


# == screening: screen, screen-merge =============================================================================

@cli.command()
@checkpoint_option(help="Trained student (best.pt).")
@fasta_option("Proteins: every pair is scored.")
@option(ScreenConfig, "fasta_b", type=click.Path(dir_okay=False),
        help="Second set: score the product FASTA x FASTA_B instead (id_a from --fasta).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="TSV of the kept pairs, best first (plus OUT.json, the run's summary).")
@click.option("--top", "top", type=int, default=None,
              help=f"Keep the best K rows [default: {field_default(ScreenConfig, 'top')} unless --min-prob].")
@option(ScreenConfig, "min_prob", type=float, help="Keep the rows with probability >= P.")
@option(ScreenConfig, "maps", type=click.Path(dir_okay=False), help="HDF5 of the interaction maps of the top rows.")
@option(ScreenConfig, "maps_top", type=int, help="How many rows' maps --maps holds.")
@option(ScreenConfig, "no_self", help="Skip a protein paired with itself.")
@option(ScreenConfig, "exact", help="Score every pair's full map (no coarse pass; slower on large sets, see "
                                    "docs/screening.md).")
@option(ScreenConfig, "rescore_fraction", type=float, help="Coarse mode: share of pairs re-scored exactly.")
@option(ScreenConfig, "coarse_factor", type=int, help="Coarse mode: residues per coarse window.")
@option(ScreenConfig, "coarse_precision", type=click.Choice(COARSE_PRECISIONS),
        help="Coarse mode: precision of the coarse pass's matrix products (reported scores are always exact).")
@option(ScreenConfig, "shard", help="i/N (0-based, as precompute --shard): score part i of N contiguous parts of the "
                                    "pair space.")
@option(ScreenConfig, "memory_gb", type=float, help="Memory budget: features spill to a memory-mapped file beyond it.")
@device_option(ScreenConfig)
@option(ScreenConfig, "threads", type=int, help="torch CPU threads (default: torch's choice).")
@overwrite_option("Replace an existing --out, OUT.json or --maps, or drop an unfinished run's state.")
def screen(**params: Any) -> None:
    """Score every pair of a proteome (or of two sets) and keep the best, with each map's argmax residues.

    Identical sequences are scored once and reported under each id. A killed run resumes from its last
    checkpoint when re-run with the same options; shards run anywhere and join with `screen-merge`.

    \b
    Example:
        python cli.py screen --checkpoint run/best.pt --fasta yeast.fasta --out hits.tsv --top 10000 \\
            --maps top-maps.h5 --maps-top 100
        python cli.py screen --checkpoint run/best.pt --fasta yeast.fasta --out part3.tsv --shard 3/16
    """
    from data.allocator import keep_freed_memory
    from student.screening.screen import run_screen

    keep_freed_memory()  # as precompute and train: large block products are not page-faulted anew (issue 22)
    if params["top"] is None and params["min_prob"] is None:
        params["top"] = field_default(ScreenConfig, "top")
    bar, advance = _staged_progress({"encode": "encoding proteins", "pairs": "scoring pairs"})
    with bar:
        summary = run_screen(build(ScreenConfig, params), progress=advance)
    _report_screen(summary)


@cli.command("screen-merge")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Merged TSV (plus OUT.json).")
@click.option("--maps", "maps", type=click.Path(dir_okay=False),
              help="Merged HDF5 of the top maps (shards ran with --maps).")
@overwrite_option("Replace an existing --out, OUT.json or --maps.")
def screen_merge(inputs: tuple[str, ...], out: str, maps: str | None, overwrite: bool) -> None:
    """Join the TSVs of the shards 1..N of one screen into the result a single run gives.

    \b
    Example:
        python cli.py screen-merge parts/part*.tsv --out hits.tsv --maps top-maps.h5
    """
    from student.screening.screen import merge_screens

    _report_screen(merge_screens(list(inputs), out, maps=maps, overwrite=overwrite))


# == newcomer path: demo =========================================================================================

@cli.command()
@option(DemoConfig, "out", type=click.Path(file_okay=False), help="Folder for everything the demo writes.")
@option(DemoConfig, "n_pairs", type=int, help="Planted-interface pairs to draw.")
@option(DemoConfig, "epochs", type=int, help="Student training epochs.")
@option(DemoConfig, "seed", type=int)
@overwrite_option("Replace an earlier demo in --out.")
def demo(**params: Any) -> None:
    """Run the whole pipeline on bundled data in a few minutes on a CPU.

    Draws the planted-interface set (known contacts, oracle teacher), runs stage one with a tiny RANDOM-weight
    ESM-2 on a few pairs, trains the student, evaluates it beside the baselines and draws heatmaps.

    \b
    Example:
      python cli.py demo --out demo_out
    """
    from demo import run_demo

    _report_demo(run_demo(build(DemoConfig, params), progress=True))


# == reports: what each command prints ===========================================================================

def _report_precompute(result, shard: tuple[int, int]) -> None:
    pairs_per_s = result.pairs_computed / result.pair_seconds if result.pair_seconds else 0.0
    tokens_per_s = result.tokens / result.compute_seconds if result.compute_seconds else 0.0
    console.print(f"[bold]{result.out}[/]: teacher {result.teacher} (sha256 {result.weights_sha256[:16]}…), "
                  f"fingerprint {result.fingerprint}")
    console.print(f"pairs: {result.pairs_computed} computed ({result.pairs_tiled} tiled), {result.pairs_cached} "
                  f"already cached, of {result.pairs_in_shard} in shard {shard[0]}/{shard[1]}; proteins: "
                  f"{result.proteins_computed} computed ({result.proteins_tiled} tiled), {result.proteins_cached} "
                  "already cached")
    console.print(f"teacher time {result.compute_seconds:.1f} s, of which pairs {result.pair_seconds:.1f} s "
                  f"({pairs_per_s:.3f} pairs/s); {tokens_per_s:.0f} tokens/s over {result.forward_batches} batches "
                  f"of up to {result.tokens_per_batch} tokens; whole run {result.seconds:.1f} s")
    if result.random_weights:
        console.print("[bold yellow]warning:[/] this teacher holds RANDOM weights (its checkpoint says so): the "
                      "cache is for testing the pipeline only, not a real teacher")


def _report_cache_info(info: dict) -> None:
    import json

    from rich.table import Table

    table = Table(title=f"teacher cache {info['path']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    cells = info["map_cells"]
    rows = [
        ("teacher", info["teacher"]), ("model", info["model"]), ("random weights", str(info["random_weights"])),
        ("weights sha256", info["weights_sha256"] or "-"),
        ("pairs", f"{info['n_pairs']:,} ({info['n_tiled_pairs']:,} tiled)"),
        ("proteins", f"{info['n_proteins']:,} ({info['n_tiled_proteins']:,} tiled)"),
        ("map cells", f"{cells:,} per map"), ("embedding dim", str(info["embedding_dim"])),
        ("file size", f"{info['file_bytes'] / 1e6:,.2f} MB"
                      + (f" ({info['file_bytes'] / (2 * cells):.2f} bytes per map cell)" if cells else "")),
        ("storage", json.dumps(info["storage"], sort_keys=True)),
        ("settings", json.dumps(info["settings"], sort_keys=True)),
        ("fingerprint", info["fingerprint"]), ("schema version", str(info["schema_version"])),
        ("tool version", info["tool_version"]), ("created", info["created"]), ("command line", info["command_line"]),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    stdout.print(table)
    _cache_warnings(info, stdout)


def _cache_warnings(info: dict, where: Console) -> None:
    if info["random_weights"]:
        where.print("[bold yellow]RANDOM-WEIGHT TEACHER: maps carry no biological signal[/] (for testing the "
                    "pipeline only)")
    if info["teacher"] in TEACHER_WARNINGS:
        where.print(f"[bold yellow]{TEACHER_WARNINGS[info['teacher']]}[/]")


def _report_training(results: dict) -> None:
    from rich.table import Table

    table = Table(title=f"best epoch {results['best_epoch']} of {results['epochs_run']} "
                        f"(threshold {results['threshold']:.3f}, {results['seconds']:.1f} s on {results['device']})")
    names = ("aupr", "auroc", "f1", "mcc", "accuracy", "positive_rate", "map_pearson", "map_top_l5", "n")
    table.add_column("part")
    for name in names:
        table.add_column(name, justify="right")
    for part in ("valid", "test"):
        metrics = results[part]
        table.add_row(part, *(_metric(metrics.get(name)) for name in names))
    console.print(table)
    if results.get("teacher_random_weights"):
        console.print("[bold yellow]note:[/] the teacher cache holds maps of a RANDOM-weight teacher")
    if results["split"].get("method") == "random":
        console.print("[yellow]note:[/] a random pair split shares proteins between parts: not evidence of "
                      "generalisation to new proteins")
    console.print(f"wrote {results['out']}/best.pt, last.pt, metrics.json, history.csv, config.json")


def _report_evaluation(result: dict) -> None:
    from rich.table import Table

    metrics = result["student"]
    names = ("aupr", "auroc", "f1", "mcc", "accuracy")
    table = Table(title=f"{result['pairs']} ({result['part']}: {metrics['n']} pairs, {result['split_source']})")
    table.add_column("model")
    for name in names:
        table.add_column(name, justify="right")
    table.add_row(f"student ({result['head']} head)", *(_metric(metrics.get(n)) for n in names))
    for name, scores in (result.get("baselines") or {}).items():
        table.add_row(f"baseline: {name}", _metric(scores.get("aupr")), _metric(scores.get("auroc")), "", "", "")
    table.add_row("chance", _metric(result["chance_aupr"]), "0.500", "", "", "")
    console.print(table)
    console.print(f"threshold {result['threshold']:.3f} (picked on validation)")
    if "map_teacher" in result:
        teacher = result["map_teacher"]
        console.print(f"map agreement with {teacher['cache']} ({teacher['map_target']} maps, {metrics.get('map_pairs')}"
                      f" pairs): Pearson r {_metric(metrics.get('map_pearson'))}, top-L/5 overlap "
                      f"{_metric(metrics.get('map_top_l5'))}, top-L/5 precision on teacher cells >= 0.5 "
                      f"{_metric(metrics.get('map_top_l5_contacts'))}"
                      + ("" if teacher["same_as_training"] else " [yellow](not the training teacher)[/]")
                      + (" [yellow](RANDOM-weight teacher)[/]" if teacher["random_weights"] else ""))


def _report_split(run, pairs: str, out: str, config: SplitConfig) -> None:
    from rich.table import Table

    result, stats = run.result, run.result.stats
    if run.conflicts_dropped:
        console.print(f"[yellow]dropped {run.conflicts_dropped} rows of sequence pairs given with both labels[/]")
    table = Table(title=f"{config.by} split of {pairs}")
    for column in ("part", "pairs", "positives", "positive rate", "proteins", "groups"):
        table.add_column(column, justify="right")
    for part in ("train", "valid", "test"):
        entry = stats[part]
        rate = "-" if entry["positive_rate"] is None else f"{entry['positive_rate']:.3f}"
        table.add_row(part, str(entry["pairs"]), str(entry["positives"]), rate, str(entry["proteins"]),
                      str(entry.get("groups", "-")))
    console.print(table)
    console.print(f"kept {stats['kept']} of {run.pairs_read} pairs; dropped {result.dropped} that straddle two parts")
    if "homology_groups" in stats:
        console.print(f"{stats['sequences']} sequences in {stats['homology_groups']} homology groups (largest "
                      f"{stats['largest_group']}; identity >= {config.min_seq_id}, coverage >= {config.coverage})")
    if config.by == "random":
        console.print("[yellow]a random pair split shares proteins between parts: its scores are not evidence[/]")
    console.print(f"wrote {out} and {run.stats_path}")


def _report_negatives(stats: dict, config: NegativesConfig, pairs: str, out: str, stats_path: Path) -> None:
    console.print(f"{stats['positives']} positives, {stats['negatives']} negatives ({config.strategy}, ratio "
                  f"{config.ratio}, seed {config.seed}); {stats['proteins_in_negatives']} proteins in negatives")
    if stats["ignored_label_0"]:
        console.print(f"ignored {stats['ignored_label_0']} rows labelled 0 in {pairs}")
    console.print(f"per-protein negatives vs ratio x positives: max relative deviation "
                  f"{stats['max_relative_deviation']:.4f}, mean {stats['mean_relative_deviation']:.4f} "
                  f"({stats['proteins_off_target']} of {stats['proteins_in_positives']} proteins off target)")
    console.print(f"wrote {out} and {stats_path}")


def _report_evaluate_maps(result, config: EvaluateMapsConfig) -> None:
    from rich.table import Table

    from student.evaluation.evaluate_maps import METRICS

    summary = result.summary
    table = Table(title=f"{summary['complexes']} complexes: {result.source}")
    for column in ("metric", "mean", "median", "std", "chance", "ratio", "> chance"):
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)
    labels = {"precision_top_l5": "P@L/5", "precision_top10": "P@10", "aupr": "AUPR",
              "interface_recall": "iface recall"}
    for metric in METRICS:
        row = summary.get(metric) or {}
        if not row:
            table.add_row(labels[metric], *["-"] * 6)
            continue
        table.add_row(labels[metric], f"{row['mean']:.4f}", f"{row['median']:.4f}", f"{row['std']:.4f}",
                      f"{row['chance_mean']:.4f}", f"{row['ratio']:.2f}", f"{row['above_chance']}/{row['n']}")
    console.print(table)
    if result.missing:
        console.print(f"[yellow]{len(result.missing)} complexes had no map and were skipped:[/] "
                      + ", ".join(result.missing[:10]) + (" …" if len(result.missing) > 10 else ""))
    if result.random_teacher:
        console.print("[bold yellow]warning:[/] these maps come from a RANDOM-weight teacher: expect chance level")
    if config.out:
        console.print(f"wrote {config.out}")
    if config.plot:
        console.print(f"wrote {len(result.scores)} plots to {config.plot}")


def _report_screen(summary) -> None:
    console.print(f"[bold]{summary.out}[/]: {summary.rows} rows; {summary.pairs_shard:,} of {summary.pairs_total:,} "
                  f"distinct-sequence pairs in shard {summary.shard}, {summary.pairs_exact:,} scored exactly "
                  f"({summary.mode} mode)")
    if summary.pairs_per_s:
        console.print(f"scoring {summary.pairs_per_s:,.0f} pairs/s; total {summary.seconds:.1f} s"
                      + ("; features spilled to disk" if summary.features_spilled else "")
                      + (f"; resumed at block {summary.resumed_from_block}" if summary.resumed_from_block else ""))
    if summary.maps:
        console.print(f"maps of the top rows: {summary.maps}")


def _report_demo(result) -> None:
    from rich.table import Table

    pre = result.precompute
    console.print(f"[bold]stage one[/]: {pre['pairs_computed']} pairs through a [bold yellow]RANDOM-WEIGHT ESM-2"
                  f"[/] (random teacher: its maps carry no signal) -> {result.esm_cache}")
    table = Table(title="student on the held-out test part of the planted-interface set (oracle teacher)")
    table.add_column("model")
    table.add_column("AUPR", justify="right")
    table.add_column("AUROC", justify="right")
    student = result.metrics
    table.add_row("student (map head, CE + map)", f"{student['aupr']:.3f}", f"{student['auroc']:.3f}")
    for name, scores in result.baselines.items():
        if isinstance(scores, dict) and "aupr" in scores:
            table.add_row(f"baseline: {name}", f"{scores['aupr']:.3f}", f"{scores['auroc']:.3f}")
    console.print(table)
    shown = ("f1", "mcc", "accuracy", "map_pearson", "map_top_l5_contacts")
    console.print(f"test pairs: {student.get('n')}; " + ", ".join(
        f"{name} {student[name]:.3f}" for name in shown if isinstance(student.get(name), (int, float))))
    console.print("(map_top_l5_contacts: share of the student map's top-L/5 cells on planted contacts)")
    console.print(f"run folder: {result.run_dir}")
    if result.plots:
        console.print(f"heatmap: [bold]{result.plots[0]}[/]")


def main() -> None:
    cli(prog_name="protein-loftr")


if __name__ == "__main__":
    main()
