"""protein-loftr command line. Thin: each command parses its options into the library's config dataclasses and
calls one library function. Library errors (`data.errors.UserError`) become a message and exit code 2; other
exceptions exit 1 with a one-line message. `--debug` shows tracebacks.

    python cli.py --help
"""
from __future__ import annotations

import logging
import sys

import click
from rich.console import Console
from rich.logging import RichHandler

from data.errors import UserError

console = Console(stderr=True)
log = logging.getLogger("protein_loftr")


class _Cli(click.Group):
    """Turns exceptions into messages and exit codes, once, for every command."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
            if ctx.params.get("debug"):
                raise
            if isinstance(exc, (UserError, KeyError, FileNotFoundError, PermissionError)):
                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                console.print(f"[bold red]error:[/] {message}")
                sys.exit(2)
            console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
                          "(run again with --debug for the traceback, and please report it)")
            sys.exit(1)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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


# == stage one: precompute, cache ==========================================================================

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID,  # noqa: E402
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text  # noqa: E402

from teacher_cache.teachers.config import PrecomputeConfig as _PrecomputeConfig  # noqa: E402

PRECOMPUTE_DEFAULTS = _PrecomputeConfig(pairs="", fasta="", model="", out="")


class _RateColumn(ProgressColumn):
    """Items per second of a task (rich's own speed column shows bytes)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "it")
        speed = task.speed or (task.completed / task.elapsed if task.elapsed else None)  # slow steps: whole-run mean
        return Text(f"{speed:.2f} {unit}/s" if speed else f"- {unit}/s", style="cyan")


@cli.command()
@click.option("--pairs", "pairs_path", required=True, type=click.Path(dir_okay=False),
              help="Pairs table: id_a id_b [label ...], tab- or space-separated.")
@click.option("--fasta", required=True, type=click.Path(dir_okay=False), help="Sequences of every id in --pairs.")
@click.option("--model", required=True,
              help="fair-esm hub name (esm2_t6_8M_UR50D ... esm2_t48_15B_UR50D; downloaded once, needs internet) or "
                   "a local fair-esm .pt with its -contact-regression.pt beside it.")
@click.option("--out", required=True, type=click.Path(), help="Cache file to create or extend (HDF5).")
@click.option("--linker", default=PRECOMPUTE_DEFAULTS.linker, show_default="25 x G",
              help="Residues placed between A and B; '' joins them directly.")
@click.option("--attention-layers", default="-1", show_default=True,
              help="Layers (1-based, comma-separated, negative from the end) averaged into the attention map.")
@click.option("--max-tokens", default=PRECOMPUTE_DEFAULTS.max_tokens, show_default=True, type=int,
              help="Context per forward pass (BOS/EOS included); longer pairs and chains are tiled into windows.")
@click.option("--tile-overlap", default=PRECOMPUTE_DEFAULTS.tile_overlap, show_default=True, type=int,
              help="Residues shared by neighbouring windows when tiling.")
@click.option("--tokens-per-batch", default=str(PRECOMPUTE_DEFAULTS.tokens_per_batch), show_default=True,
              help="Padded tokens per forward batch (sequences are length-sorted first); auto: fitted to the "
                   "device's free memory (80% on CUDA, 50% of available RAM on CPU) for the longest input.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--precision", default="auto", show_default=True,
              type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="auto: fp32 on CPU, bf16 on CUDA where supported (else fp16); bf16 also runs on CPU. The "
                   "contact head runs in fp32.")
@click.option("--per-residue", is_flag=True, help="Also store per-residue (L, D) embeddings of every protein.")
@click.option("--shard", default="0/1", show_default=True,
              help="i/N: compute block i of N of the sorted work list (merge shards with `cache merge`).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out built with another teacher or settings (a compatible one is extended).")
@click.option("--checkpoint-seconds", default=PRECOMPUTE_DEFAULTS.checkpoint_seconds, show_default=True,
              type=float, help="Save finished work at least this often (a killed run resumes from there).")
def precompute(pairs_path: str, fasta: str, model: str, out: str, linker: str, attention_layers: str,
               max_tokens: int, tile_overlap: int, tokens_per_batch: str, device: str, precision: str,
               per_residue: bool, shard: str, overwrite: bool, checkpoint_seconds: float) -> None:
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
    from teacher_cache.teachers.config import PrecomputeConfig, parse_layers, parse_shard, parse_tokens_per_batch
    from teacher_cache.teachers.precompute import run_precompute

    keep_freed_memory()  # faster on CPU: benchmarks/precompute.py measures it (its "reuse" rows)
    config = PrecomputeConfig(
        pairs=pairs_path, fasta=fasta, model=model, out=out, linker=linker,
        attention_layers=parse_layers(attention_layers), max_tokens=max_tokens, tile_overlap=tile_overlap,
        tokens_per_batch=parse_tokens_per_batch(tokens_per_batch), device=device, precision=precision,
        per_residue=per_residue,
        shard=parse_shard(shard), overwrite=overwrite, checkpoint_seconds=checkpoint_seconds)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(stage: str, count: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, unit=stage)
            bar.advance(tasks[stage], count)

        result = run_precompute(config, progress=advance)
    pairs_per_s = result.pairs_computed / result.pair_seconds if result.pair_seconds else 0.0
    tokens_per_s = result.tokens / result.compute_seconds if result.compute_seconds else 0.0
    console.print(f"[bold]{result.out}[/]: teacher {result.teacher} (sha256 {result.weights_sha256[:16]}…), "
                  f"fingerprint {result.fingerprint}")
    console.print(f"pairs: {result.pairs_computed} computed ({result.pairs_tiled} tiled), {result.pairs_cached} "
                  f"already cached, of {result.pairs_in_shard} in shard {shard}; proteins: {result.proteins_computed}"
                  f" computed ({result.proteins_tiled} tiled), {result.proteins_cached} already cached")
    console.print(f"teacher time {result.compute_seconds:.1f} s, of which pairs {result.pair_seconds:.1f} s "
                  f"({pairs_per_s:.3f} pairs/s); {tokens_per_s:.0f} tokens/s over {result.forward_batches} batches "
                  f"of up to {result.tokens_per_batch} tokens; "
                  f"whole run {result.seconds:.1f} s")
    if result.random_weights:
        console.print("[bold yellow]warning:[/] this teacher holds RANDOM weights (its checkpoint says so): the "
                      "cache is for testing the pipeline only, not a real teacher")


# -- cache group --

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
def cache_info(cache_path: str) -> None:
    """Summarise a cache: teacher, settings, storage, counts, size.

    \b
    Example:
      python cli.py cache info teacher.h5
    """
    import json

    from rich.table import Table

    from teacher_cache import TeacherCache

    with TeacherCache.open(cache_path) as opened:
        info = opened.info()
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
    console.print(table)
    if info["random_weights"]:
        console.print("[bold yellow]RANDOM-WEIGHT TEACHER: maps carry no biological signal[/] (for testing the "
                      "pipeline only)")
    if info["teacher"] in TEACHER_WARNINGS:
        console.print(f"[bold yellow]{TEACHER_WARNINGS[info['teacher']]}[/]")


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
    from rich.progress import Progress as _Progress

    from teacher_cache.verify import verify_cache

    with _Progress(console=console, transient=True) as bar:
        task = bar.add_task("decoding maps", total=None)
        report = verify_cache(cache_path, progress=lambda done, total: bar.update(task, completed=done, total=total))
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
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
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


# == stage two: train, evaluate, predict ===================================================================

from student.config import TrainConfig as _TrainConfig  # noqa: E402 (dataclasses only: no torch at import)

TRAIN_DEFAULTS = _TrainConfig()


def _int_tuple(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


def _metric(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


@cli.command()
@click.option("--pairs", "pairs_path", required=True, type=click.Path(dir_okay=False),
              help="Pairs table with labels (and optionally a split column).")
@click.option("--fasta", required=True, type=click.Path(dir_okay=False), help="Sequences of every id in --pairs.")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False),
              help="Teacher cache from `precompute` (without one: labels only, no map or semantic loss).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: best.pt, last.pt, metrics.json, history.csv, config.json.")
@click.option("--head", default=TRAIN_DEFAULTS.model.head, show_default=True,
              type=click.Choice(["features", "map", "both"]),
              help="features: pooled A and B features -> MLP; map: statistics of the interaction map; both.")
@click.option("--map-loss", default=TRAIN_DEFAULTS.map_loss, show_default=True, type=click.Choice(["mse", "kl", "bce"]))
@click.option("--map-target", default=TRAIN_DEFAULTS.map_target, show_default=True,
              type=click.Choice(["contact", "attention"]), help="Which teacher map the student's map learns.")
@click.option("--map-norm", default=TRAIN_DEFAULTS.map_norm, show_default=True, type=click.Choice(["mass", "mean"]),
              help="mass: map loss / teacher map mass (sparse maps keep a useful weight); mean: average over cells.")
@click.option("--alpha-map", default=TRAIN_DEFAULTS.alpha_map, show_default=True, type=float,
              help="Weight of the map loss.")
@click.option("--beta-sem", default=TRAIN_DEFAULTS.beta_sem, show_default=True, type=float,
              help="Weight of the semantic (embedding cosine) loss.")
@click.option("--epochs", default=TRAIN_DEFAULTS.epochs, show_default=True, type=int)
@click.option("--batch-size", default=TRAIN_DEFAULTS.batch_size, show_default=True, type=int)
@click.option("--lr", default=TRAIN_DEFAULTS.lr, show_default=True, type=float, help="AdamW peak learning rate.")
@click.option("--weight-decay", default=TRAIN_DEFAULTS.weight_decay, show_default=True, type=float)
@click.option("--warmup", default=TRAIN_DEFAULTS.warmup, show_default=True, type=float,
              help="Fraction of steps in linear warm-up, then cosine decay.")
@click.option("--max-len", default=TRAIN_DEFAULTS.max_len, show_default=True, type=int,
              help="Training crops longer proteins (and their maps) to a random window; evaluation never crops.")
@click.option("--patience", default=TRAIN_DEFAULTS.patience, show_default=True, type=int,
              help="Stop after this many epochs without a better validation AUPR.")
@click.option("--split", default=TRAIN_DEFAULTS.split, show_default=True,
              type=click.Choice(["auto", "column", "random", "protein"]),
              help="auto: the pairs file's split column if any, else protein-disjoint.")
@click.option("--valid-frac", default=TRAIN_DEFAULTS.valid_frac, show_default=True, type=float)
@click.option("--test-frac", default=TRAIN_DEFAULTS.test_frac, show_default=True, type=float)
@click.option("--n-train", default=None, type=int, help="Seeded stratified subsample of the training part.")
@click.option("--channels", default=",".join(map(str, TRAIN_DEFAULTS.model.channels)), show_default=True,
              callback=_int_tuple, help="Conv output channels, one per layer.")
@click.option("--kernel-sizes", default=",".join(map(str, TRAIN_DEFAULTS.model.kernel_sizes)), show_default=True,
              callback=_int_tuple, help="Odd conv kernel sizes, one per layer.")
@click.option("--embed-dim", default=TRAIN_DEFAULTS.model.embed_dim, show_default=True, type=int)
@click.option("--seed", default=TRAIN_DEFAULTS.seed, show_default=True, type=int)
@click.option("--device", default=TRAIN_DEFAULTS.device, show_default=True,
              type=click.Choice(["auto", "cpu", "cuda"]), help="auto: cuda when available (bf16 autocast there).")
@click.option("--workers", default=TRAIN_DEFAULTS.workers, show_default=True, type=int,
              help="DataLoader worker processes.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out.")
def train(pairs_path: str, fasta: str, cache_path: str | None, out: str, head: str, map_loss: str, map_target: str,
          map_norm: str, alpha_map: float, beta_sem: float, epochs: int, batch_size: int, lr: float,
          weight_decay: float, warmup: float, max_len: int, patience: int, split: str, valid_frac: float,
          test_frac: float, n_train: int | None, channels: tuple[int, ...], kernel_sizes: tuple[int, ...],
          embed_dim: int, seed: int, device: str, workers: int, resume: bool, overwrite: bool) -> None:
    """Stage two: train the CNN student on labels plus the teacher cache's maps and embeddings.

    Loss = class-weighted cross-entropy + alpha-map x map loss + beta-sem x semantic loss. Early stopping on
    validation AUPR; the decision threshold is picked on validation. A killed run continues with --resume.

    \b
    Example:
      python cli.py train --pairs pairs.tsv --fasta seqs.fasta --cache teacher.h5 --out run1 --epochs 30
    """
    from dataclasses import replace

    from student.config import ModelConfig, TrainConfig
    from student.trainer import train as run_training
    from data.allocator import keep_freed_memory

    model = replace(ModelConfig(), head=head, channels=channels, kernel_sizes=kernel_sizes, embed_dim=embed_dim)
    config = TrainConfig(pairs=pairs_path, fasta=fasta, cache=cache_path, out=out, map_loss=map_loss,
                         map_target=map_target, map_norm=map_norm, alpha_map=alpha_map, beta_sem=beta_sem,
                         epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup=warmup,
                         max_len=max_len, patience=patience, split=split, valid_frac=valid_frac,
                         test_frac=test_frac, n_train=n_train, seed=seed, device=device, workers=workers,
                         resume=resume, overwrite=overwrite, model=model)
    keep_freed_memory()  # faster on CPU: benchmarks/train.py --keep-heap measures it
    results = run_training(config, progress=True)
    _print_training(results)


def _print_training(results: dict) -> None:
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


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="best.pt of a training run.")
@click.option("--pairs", "pairs_path", required=True, type=click.Path(dir_okay=False), help="Labelled pairs table.")
@click.option("--fasta", required=True, type=click.Path(dir_okay=False))
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False),
              help="Teacher cache: also report the agreement of the student's maps with the teacher's.")
@click.option("--split", "part", type=click.Choice(["train", "valid", "test"]),
              help="Evaluate one part (the split column, or the training run's split redone).")
@click.option("--baselines", is_flag=True, help="Also fit and score trivial baselines on the training part.")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
def evaluate(checkpoint: str, pairs_path: str, fasta: str, cache_path: str | None, part: str | None,
             baselines: bool, batch_size: int, device: str, json_out: str | None) -> None:
    """Metrics of a trained student: AUROC, AUPR, F1, MCC, accuracy (threshold picked on validation), map agreement.

    \b
    Example:
      python cli.py evaluate --checkpoint run1/best.pt --pairs pairs.tsv --fasta seqs.fasta \\
          --cache teacher.h5 --split test --baselines
    """
    import json

    from rich.table import Table

    from student.config import EvaluateConfig
    from student.evaluation.evaluate import evaluate as run_evaluation

    config = EvaluateConfig(checkpoint=checkpoint, pairs=pairs_path, fasta=fasta, cache=cache_path, split=part,
                            baselines=baselines, batch_size=batch_size, device=device)
    result = run_evaluation(config)
    metrics = result["student"]
    table = Table(title=f"{result['pairs']} ({result['part']}: {metrics['n']} pairs, {result['split_source']})")
    table.add_column("model")
    for name in ("aupr", "auroc", "f1", "mcc", "accuracy"):
        table.add_column(name, justify="right")
    table.add_row(f"student ({result['head']} head)",
                  *(_metric(metrics.get(n)) for n in ("aupr", "auroc", "f1", "mcc", "accuracy")))
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
    if json_out:
        with open(json_out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        console.print(f"wrote {json_out}")


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="best.pt of a training run.")
@click.option("--pairs", "pairs_path", required=True, type=click.Path(dir_okay=False),
              help="Pairs table (labels optional).")
@click.option("--fasta", required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Predictions TSV: id_a id_b probability predicted [label].")
@click.option("--maps", "maps_path", type=click.Path(dir_okay=False),
              help="Also write each pair's interaction map (probabilities) to this HDF5 file.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="Write heatmap PNGs into this folder.")
@click.option("--plot-max", default=20, show_default=True, type=int, help="Heatmaps of at most this many pairs.")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False),
              help="Teacher cache: heatmaps show the teacher's map beside the student's.")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
def predict(checkpoint: str, pairs_path: str, fasta: str, out: str, maps_path: str | None, plot_dir: str | None,
            plot_max: int, cache_path: str | None, batch_size: int, device: str) -> None:
    """Interaction probabilities (and maps) of pairs from a trained student; no teacher needed.

    \b
    Example:
      python cli.py predict --checkpoint run1/best.pt --pairs new.tsv --fasta seqs.fasta --out preds.tsv \\
          --maps maps.h5 --plot heatmaps
    """
    from student.config import PredictConfig
    from student.predict import run_predict

    config = PredictConfig(checkpoint=checkpoint, pairs=pairs_path, fasta=fasta, out=out, maps=maps_path,
                           plot=plot_dir, plot_max=plot_max, cache=cache_path, batch_size=batch_size, device=device)
    summary = run_predict(config)
    console.print(f"wrote {summary['out']}: {summary['pairs']} pairs, {summary['predicted_positive']} predicted to "
                  f"interact (threshold {summary['threshold']:.3f})")
    if "maps" in summary:
        console.print(f"wrote {summary['maps']}")
    if "plots" in summary:
        console.print(f"wrote {len(summary['plots'])} heatmap(s) to {plot_dir}")



# == evidence: synth, ablate ===============================================================================


@cli.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write.")
@click.option("--n-pairs", default=2500, show_default=True, help="Pairs to draw (all parts together).")
@click.option("--families", default=4, show_default=True, help="Motif families (complementary motif pairs).")
@click.option("--motif-len", default=8, show_default=True, help="Residues per motif (contact block side).")
@click.option("--min-len", default=48, show_default=True, help="Shortest protein.")
@click.option("--max-len", default=128, show_default=True, help="Longest protein.")
@click.option("--pos-frac", default=0.5, show_default=True, help="Fraction of positive pairs.")
@click.option("--valid-frac", default=0.1, show_default=True, help="Fraction of pairs in the valid part.")
@click.option("--test-frac", default=0.1, show_default=True, help="Fraction of pairs in the test part.")
@click.option("--embedding-dim", default=32, show_default=True, help="Size of the oracle teacher's embeddings.")
@click.option("--seed", default=0, show_default=True, help="Seed of everything drawn.")
@click.option("--overwrite", is_flag=True, help="Replace existing files in --out.")
def synth(out_dir: str, n_pairs: int, families: int, motif_len: int, min_len: int, max_len: int, pos_frac: float,
          valid_frac: float, test_frac: float, embedding_dim: int, seed: int, overwrite: bool) -> None:
    """Write a planted-interface benchmark: seqs.fasta, pairs.tsv (with a split column) and an oracle cache.h5.

    Positive pairs carry complementary motifs whose 8 x 8 contact block is planted; negatives carry motifs that
    do not match. The cache is the exact teacher-cache format, marked teacher=synthetic (not ESM-2).

    \b
    Example:
        python cli.py synth --out synth_data --n-pairs 2500 --seed 0
    """
    from rich.progress import Progress

    from data.synth import SynthConfig
    from teacher_cache.teachers.synthetic import make_synthetic

    config = SynthConfig(n_pairs=n_pairs, families=families, motif_len=motif_len, min_len=min_len, max_len=max_len,
                         pos_frac=pos_frac, valid_frac=valid_frac, test_frac=test_frac, embedding_dim=embedding_dim,
                         seed=seed)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("drawing pairs and writing the oracle cache", total=n_pairs)
        outputs = make_synthetic(config, out_dir, overwrite=overwrite, progress=lambda n: bar.advance(task, n))
    for part, count in outputs.counts.items():
        console.print(f"{part:>5}: {count['pairs']} pairs, {count['positives']} positive")
    console.print(f"planted contacts fill {100 * outputs.contact_density:.2f}% of a positive pair's map")
    console.print(f"wrote {outputs.fasta}, {outputs.pairs}, {outputs.cache} (teacher=synthetic, seed {seed})")


def _comma_list(kind: type):
    def convert(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of {kind.__name__} values") from None
    return convert


@cli.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True),
              help="Directory written by `synth` (seqs.fasta, pairs.tsv, cache.h5).")
@click.option("--pairs", type=click.Path(dir_okay=False), help="Pairs table with label and split columns.")
@click.option("--fasta", type=click.Path(dir_okay=False), help="FASTA of the pairs' proteins.")
@click.option("--cache", type=click.Path(dir_okay=False), help="Teacher cache.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory (resumed if it exists).")
@click.option("--heads", default="features,map,both", show_default=True, callback=_comma_list(str))
@click.option("--losses", default="ce,ce+sem,ce+map,ce+map+sem", show_default=True, callback=_comma_list(str))
@click.option("--n-train", default="250,500,1000,2000", show_default=True, callback=_comma_list(int),
              help="Training-set sizes (seeded stratified subsamples of the train part).")
@click.option("--seeds", default="0,1,2", show_default=True, callback=_comma_list(int))
@click.option("--map-loss", default="bce", show_default=True, help="mse | kl | bce (rows with a map term).")
@click.option("--map-norm", default="mass", show_default=True, help="mass | mean.")
@click.option("--map-target", default="contact", show_default=True, help="contact | attention.")
@click.option("--alpha-map", default=1.0, show_default=True, help="Weight of the map loss.")
@click.option("--beta-sem", default=0.1, show_default=True, help="Weight of the semantic loss.")
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--patience", default=30, show_default=True, help="Early-stopping patience (epochs).")
@click.option("--channels", default="64,64", show_default=True, callback=_comma_list(int),
              help="Student conv channels.")
@click.option("--kernel-sizes", default="5,5", show_default=True, callback=_comma_list(int))
@click.option("--embed-dim", default=32, show_default=True)
@click.option("--hidden", default=32, show_default=True)
@click.option("--threads", default=None, type=int, help="torch threads (default: torch's choice).")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto.")
@click.option("--report-only", is_flag=True, help="Only rewrite summary.md and the plot from OUT/results.csv.")
def ablate(data_dir: str | None, pairs: str | None, fasta: str | None, cache: str | None, out: str,
           heads: tuple[str, ...], losses: tuple[str, ...], n_train: tuple[int, ...], seeds: tuple[int, ...],
           map_loss: str, map_norm: str, map_target: str, alpha_map: float, beta_sem: float, epochs: int,
           batch_size: int, lr: float, patience: int, channels: tuple[int, ...], kernel_sizes: tuple[int, ...],
           embed_dim: int, hidden: int, threads: int | None, device: str, report_only: bool) -> None:
    """Train a grid of students (head x loss terms x training-set size x seed) on one cache and fixed split.

    Writes OUT/results.csv (one row per run; rows already there are skipped on a re-run), OUT/summary.md
    (mean ± std over seeds) and OUT/learning_curve.png.

    \b
    Example:
        python cli.py synth --out synth_data
        python cli.py ablate --data synth_data --out ablation --n-train 500 --seeds 0,1,2
    """
    from pathlib import Path

    from student.evaluation.ablate import AblateConfig, run_ablation, write_report
    from student.config import ModelConfig

    if report_only:
        summary, plot = write_report(out)
        console.print(summary.read_text())
        console.print(f"wrote {summary}, {plot}")
        return
    if data_dir:
        base = Path(data_dir)
        pairs = pairs or str(base / "pairs.tsv")
        fasta = fasta or str(base / "seqs.fasta")
        cache = cache or str(base / "cache.h5")
    if not (pairs and fasta and cache):
        raise UserError("give --data DIR, or all of --pairs, --fasta and --cache")
    model = ModelConfig(embed_dim=embed_dim, channels=channels, kernel_sizes=kernel_sizes, hidden=hidden)
    config = AblateConfig(pairs=pairs, fasta=fasta, cache=cache, out=out, heads=heads, losses=losses,
                          n_train=n_train, seeds=seeds, map_loss=map_loss, map_norm=map_norm, map_target=map_target,
                          alpha_map=alpha_map, beta_sem=beta_sem, epochs=epochs, batch_size=batch_size, lr=lr,
                          patience=patience, threads=threads, device=device, model=model)

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


# == evaluation controls: split, negatives =================================================================


def _print_split_table(stats: dict, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("part", "pairs", "positives", "positive rate", "proteins", "groups"):
        table.add_column(column, justify="right")
    for part in ("train", "valid", "test"):
        entry = stats[part]
        rate = "-" if entry["positive_rate"] is None else f"{entry['positive_rate']:.3f}"
        table.add_row(part, str(entry["pairs"]), str(entry["positives"]), rate, str(entry["proteins"]),
                      str(entry.get("groups", "-")))
    console.print(table)


@cli.command()
@click.option("--pairs", "pairs_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Pairs table (id_a id_b label).")
@click.option("--fasta", required=True, type=click.Path(exists=True, dir_okay=False), help="Sequences (FASTA).")
@click.option("--by", type=click.Choice(["random", "protein", "homology"]), default="protein", show_default=True,
              help="random: by pair (leaks proteins; never evidence); protein: by sequence content; "
                   "homology: by MMseqs2 homology group.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Split pairs table to write.")
@click.option("--test-frac", default=0.1, show_default=True, help="Target fraction of pairs in the test part.")
@click.option("--valid-frac", default=0.1, show_default=True, help="Target fraction of pairs in the valid part.")
@click.option("--seed", default=0, show_default=True, help="Seed of the assignment.")
@click.option("--min-seq-id", default=0.3, show_default=True, help="Homology: MMseqs2 identity threshold.")
@click.option("--coverage", default=0.8, show_default=True, help="Homology: MMseqs2 coverage of both sequences.")
@click.option("--threads", default=2, show_default=True, help="Homology: MMseqs2 threads.")
@click.option("--drop-conflicts", is_flag=True,
              help="Drop every row of a sequence pair given with both labels (default: an error naming both lines).")
def split(pairs_path: str, fasta: str, by: str, out: str, test_frac: float, valid_frac: float, seed: int,
          min_seq_id: float, coverage: float, threads: int, drop_conflicts: bool) -> None:
    """Split a pairs table into train/valid/test and write it with a split column (plus OUT.stats.json).

    protein and homology splits keep every protein (identical sequences under any id are one protein) or every
    homology group on one side; pairs that straddle two parts are dropped and counted.

    \b
    Example:
        python cli.py split --pairs pairs.tsv --fasta seqs.fasta --by homology --out split.tsv
    """
    from data.fasta import read_fasta
    from data.pairs import read_pairs
    from data.splits import SplitConfig, make_split, write_split

    table = read_pairs(pairs_path, read_fasta(fasta), require_labels=True, drop_conflicts=drop_conflicts)
    if table.conflicts_dropped:
        console.print(f"[yellow]dropped {table.conflicts_dropped} rows of sequence pairs given with both labels[/]")
    config = SplitConfig(by=by, valid_frac=valid_frac, test_frac=test_frac, seed=seed, min_seq_id=min_seq_id,
                         coverage=coverage, threads=threads)
    with console.status("clustering with MMseqs2" if by == "homology" else "splitting"):
        result = make_split(table.pairs, config)
    stats_path = write_split(out, result)
    _print_split_table(result.stats, f"{by} split of {pairs_path}")
    console.print(f"kept {result.stats['kept']} of {len(table.pairs)} pairs; dropped "
                  f"{result.dropped} that straddle two parts")
    if "homology_groups" in result.stats:
        console.print(f"{result.stats['sequences']} sequences in {result.stats['homology_groups']} homology groups "
                      f"(largest {result.stats['largest_group']}; identity >= {min_seq_id}, coverage >= {coverage})")
    if by == "random":
        console.print("[yellow]a random pair split shares proteins between parts: its scores are not evidence[/]")
    console.print(f"wrote {out} and {stats_path}")


@cli.command()
@click.option("--pairs", "pairs_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Positive pairs (id_a id_b [label]); rows labelled 0 are ignored.")
@click.option("--fasta", required=True, type=click.Path(exists=True, dir_okay=False), help="Sequences (FASTA).")
@click.option("--ratio", default=10.0, show_default=True, help="Negatives per positive.")
@click.option("--strategy", type=click.Choice(["random", "degree-balanced"]), default="degree-balanced",
              show_default=True, help="random: uniform over the FASTA; degree-balanced: each protein's negatives "
                                      "proportional to its positives.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Pairs table to write.")
@click.option("--seed", default=0, show_default=True, help="Seed of the draw.")
def negatives(pairs_path: str, fasta: str, ratio: float, strategy: str, out: str, seed: int) -> None:
    """Write the positives (label 1) plus sampled negatives (label 0); OUT.stats.json holds the balance.

    No negative is a known positive in either orientation (compared by sequence, not id), none repeats.

    \b
    Example:
        python cli.py negatives --pairs positives.tsv --fasta seqs.fasta --ratio 10 --out pairs.tsv
    """
    from data.fasta import read_fasta
    from data.negatives import NegativesConfig, sample_negatives, write_negatives
    from data.pairs import read_pairs

    sequences = read_fasta(fasta)
    table = read_pairs(pairs_path, sequences)
    config = NegativesConfig(ratio=ratio, strategy=strategy, seed=seed)
    with console.status("drawing negatives"):
        result = sample_negatives(table.pairs, sequences, config)
    stats_path = write_negatives(out, result)
    stats = result.stats
    console.print(f"{stats['positives']} positives, {stats['negatives']} negatives ({strategy}, ratio {ratio}, "
                  f"seed {seed}); {stats['proteins_in_negatives']} proteins in negatives")
    if stats["ignored_label_0"]:
        console.print(f"ignored {stats['ignored_label_0']} rows labelled 0 in {pairs_path}")
    console.print(f"per-protein negatives vs ratio x positives: max relative deviation "
                  f"{stats['max_relative_deviation']:.4f}, mean {stats['mean_relative_deviation']:.4f} "
                  f"({stats['proteins_off_target']} of {stats['proteins_in_positives']} proteins off target)")
    console.print(f"wrote {out} and {stats_path}")


# == structures: structure-cache, evaluate-maps ============================================================


def _progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=True)


@cli.command("structure-cache")
@click.option("--structures", required=True, type=click.Path(dir_okay=False),
              help="Manifest TSV: id_a id_b structure_a structure_b [chains_a chains_b] (paths relative to it; "
                   "chains comma-separated, '-' for all).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Cache file to write (HDF5).")
@click.option("--fasta", type=click.Path(dir_okay=False),
              help="Sequences of the ids; each structure is aligned to its id's sequence.")
@click.option("--fasta-out", type=click.Path(dir_okay=False),
              help="Write the structures' own sequences here (without --fasta).")
@click.option("--cutoff", default=8.0, show_default=True, help="Contact: C-beta distance below this (angstrom).")
@click.option("--min-identity", default=0.5, show_default=True,
              help="Fail when a structure matches its sequence worse than this (fraction of aligned letters).")
@click.option("--negatives", type=click.Path(dir_okay=False),
              help="Pairs table whose label-0 pairs are added with all-zero maps (non-complexes).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def structure_cache(structures: str, out: str, fasta: str | None, fasta_out: str | None, cutoff: float,
                    min_identity: float, negatives: str | None, overwrite: bool) -> None:
    """Write a teacher cache of TRUE inter-chain contacts read from PDB / mmCIF structures.

    The `contact` map is 1 where C-beta atoms (C-alpha for glycine) are closer than --cutoff, 0 elsewhere and 0
    where a residue has no coordinates; `attention` holds a soft distance map that is exactly 0 on those
    unobserved cells. Protein embeddings are amino-acid compositions, not ESM embeddings: train with
    --beta-sem 0 on a structure cache.

    \b
    Example:
      python cli.py structure-cache --structures complexes.tsv --fasta-out seqs.fasta --out structure.h5
    """
    from teacher_cache.teachers.structure import StructureCacheConfig, build_structure_cache

    config = StructureCacheConfig(structures=structures, out=out, fasta=fasta, fasta_out=fasta_out, cutoff=cutoff,
                                  min_identity=min_identity, negatives=negatives, overwrite=overwrite)
    with _progress_bar("reading structures") as bar:
        task = bar.add_task("structures", total=None)
        report = build_structure_cache(config, progress=lambda done, total: bar.update(task, completed=done,
                                                                                        total=total))
    console.print(f"[bold]{report.out}[/]: {report.pairs} sequence pairs from {report.complexes} complexes "
                  f"({report.merged_duplicates} repeated pairs united) and {report.negatives} negatives with "
                  f"all-zero maps, {report.proteins} proteins, "
                  f"{report.contacts} contact cells, {report.observed_fraction:.1%} of cells observed")
    if report.fasta_out:
        console.print(f"wrote the structures' sequences to {report.fasta_out}")
    console.print("[yellow]note:[/] embeddings are residue compositions, not ESM embeddings: use --beta-sem 0")


@cli.command("evaluate-maps")
@click.option("--structures", required=True, type=click.Path(dir_okay=False),
              help="Manifest TSV of complexes (as for structure-cache).")
@click.option("--cache", type=click.Path(dir_okay=False), help="Teacher cache whose maps to score.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Student checkpoint whose maps to score.")
@click.option("--fasta", type=click.Path(dir_okay=False),
              help="Sequences the maps were computed for (default: the structures' own sequences).")
@click.option("--map", "map_name", default="contact", show_default=True, help="Cache map: contact | attention.")
@click.option("--plot", type=click.Path(file_okay=False), help="Folder for one PNG per complex.")
@click.option("--out", type=click.Path(dir_okay=False), help="Per-complex scores (TSV).")
@click.option("--cutoff", default=8.0, show_default=True, help="True contact: C-beta distance below this.")
@click.option("--device", default="cpu", show_default=True, help="Device for a student (cpu | cuda).")
def evaluate_maps_command(structures: str, cache: str | None, checkpoint: str | None, fasta: str | None,
                          map_name: str, plot: str | None, out: str | None, cutoff: float, device: str) -> None:
    """Score a teacher's or a student's maps against the true contacts of experimental complexes.

    Per complex, on cells where both residues have coordinates: precision of the top-L/5 and top-10 cells,
    AUPR and interface-residue recall, each beside chance (the complex's contact density).

    \b
    Examples:
      python cli.py evaluate-maps --structures complexes.tsv --fasta seqs.fasta --cache teacher.h5
      python cli.py evaluate-maps --structures complexes.tsv --fasta seqs.fasta --checkpoint run/best.pt \\
          --out per_complex.tsv --plot maps/
    """
    from rich.table import Table

    from student.evaluation.evaluate_maps import METRICS, EvaluateMapsConfig, evaluate_maps

    config = EvaluateMapsConfig(structures=structures, cache=cache, checkpoint=checkpoint, fasta=fasta,
                                map_name=map_name, plot=plot, out=out, cutoff=cutoff, device=device)
    with _progress_bar("evaluating maps") as bar:
        task = bar.add_task("complexes", total=None)
        result = evaluate_maps(config, progress=lambda done, total: bar.update(task, completed=done, total=total))
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
    if out:
        console.print(f"wrote {out}")
    if plot:
        console.print(f"wrote {len(result.scores)} plots to {plot}")



# == screening: screen, screen-merge =======================================================================


def _screen_progress_columns():
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn(),
            TimeRemainingColumn())


def _print_screen_summary(summary) -> None:
    console.print(f"[bold]{summary.out}[/]: {summary.rows} rows; {summary.pairs_shard:,} of {summary.pairs_total:,} "
                  f"distinct-sequence pairs in shard {summary.shard}, {summary.pairs_exact:,} scored exactly "
                  f"({summary.mode} mode)")
    if summary.pairs_per_s:
        console.print(f"scoring {summary.pairs_per_s:,.0f} pairs/s; total {summary.seconds:.1f} s"
                      + ("; features spilled to disk" if summary.features_spilled else "")
                      + (f"; resumed at block {summary.resumed_from_block}" if summary.resumed_from_block else ""))
    if summary.maps:
        console.print(f"maps of the top rows: {summary.maps}")


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="Trained student (best.pt).")
@click.option("--fasta", required=True, type=click.Path(dir_okay=False), help="Proteins: every pair is scored.")
@click.option("--fasta-b", type=click.Path(dir_okay=False),
              help="Second set: score the product FASTA x FASTA_B instead (id_a from --fasta).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="TSV of the kept pairs, best first (plus OUT.json, the run's summary).")
@click.option("--top", type=int, default=None, help="Keep the best K rows [default: 10000 unless --min-prob].")
@click.option("--min-prob", type=float, default=None, help="Keep the rows with probability >= P.")
@click.option("--maps", type=click.Path(dir_okay=False), help="HDF5 of the interaction maps of the top rows.")
@click.option("--maps-top", default=100, show_default=True, help="How many rows' maps --maps holds.")
@click.option("--no-self", is_flag=True, help="Skip a protein paired with itself.")
@click.option("--exact", is_flag=True,
              help="Score every pair's full map (no coarse pass; slower on large sets, see docs/screening.md).")
@click.option("--rescore-fraction", default=0.02, show_default=True,
              help="Coarse mode: share of pairs re-scored exactly.")
@click.option("--coarse-factor", default=4, show_default=True, help="Coarse mode: residues per coarse window.")
@click.option("--shard", default=None, help="i/N (0-based, as precompute --shard): score part i of N contiguous parts of the pair space.")
@click.option("--memory-gb", default=4.0, show_default=True,
              help="Memory budget: features spill to a memory-mapped file beyond it.")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--overwrite", is_flag=True, help="Replace a finished output, or drop an unfinished run's state.")
def screen(checkpoint: str, fasta: str, fasta_b: str | None, out: str, top: int | None, min_prob: float | None,
           maps: str | None, maps_top: int, no_self: bool, exact: bool, rescore_fraction: float, coarse_factor: int,
           shard: str | None, memory_gb: float, device: str, threads: int | None, overwrite: bool) -> None:
    """Score every pair of a proteome (or of two sets) and keep the best, with each map's argmax residues.

    Identical sequences are scored once and reported under each id. A killed run resumes from its last
    checkpoint when re-run with the same options; shards run anywhere and join with `screen-merge`.

    \b
    Example:
        python cli.py screen --checkpoint run/best.pt --fasta yeast.fasta --out hits.tsv --top 10000 \\
            --maps top-maps.h5 --maps-top 100
        python cli.py screen --checkpoint run/best.pt --fasta yeast.fasta --out part3.tsv --shard 3/16
    """
    from student.screening.screen import ScreenConfig, run_screen

    if top is None and min_prob is None:
        top = 10000
    config = ScreenConfig(checkpoint=checkpoint, fasta=fasta, fasta_b=fasta_b, out=out, top=top, min_prob=min_prob,
                          maps=maps, maps_top=maps_top, no_self=no_self, device=device, memory_gb=memory_gb,
                          exact=exact, coarse_factor=coarse_factor, rescore_fraction=rescore_fraction, shard=shard,
                          overwrite=overwrite, threads=threads)
    with Progress(*_screen_progress_columns(), console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(phase: str, count: int, total: int) -> None:
            if phase not in tasks:
                label = {"encode": "encoding proteins", "pairs": "scoring pairs"}.get(phase, phase)
                tasks[phase] = bar.add_task(label, total=total, unit=phase)
            bar.advance(tasks[phase], count)

        summary = run_screen(config, progress=advance)
    _print_screen_summary(summary)


@cli.command("screen-merge")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Merged TSV (plus OUT.json).")
@click.option("--maps", type=click.Path(dir_okay=False), help="Merged HDF5 of the top maps (shards ran with --maps).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
def screen_merge(inputs: tuple[str, ...], out: str, maps: str | None, overwrite: bool) -> None:
    """Join the TSVs of the shards 1..N of one screen into the result a single run gives.

    \b
    Example:
        python cli.py screen-merge parts/part*.tsv --out hits.tsv --maps top-maps.h5
    """
    from student.screening.screen import merge_screens

    summary = merge_screens(list(inputs), out, maps=maps, overwrite=overwrite)
    _print_screen_summary(summary)



# == newcomer path: demo ===================================================================================
@cli.command()
@click.option("--out", default="demo_out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for everything the demo writes.")
@click.option("--n-pairs", default=600, show_default=True, help="Planted-interface pairs to draw.")
@click.option("--epochs", default=12, show_default=True, help="Student training epochs.")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an earlier demo in --out.")
def demo(out: str, n_pairs: int, epochs: int, seed: int, overwrite: bool) -> None:
    """Run the whole pipeline on bundled data in a few minutes on a CPU.

    Draws the planted-interface set (known contacts, oracle teacher), runs stage one with a tiny RANDOM-weight
    ESM-2 on a few pairs, trains the student, evaluates it beside the baselines and draws heatmaps.

    \b
    Example:
      python cli.py demo --out demo_out
    """
    from rich.table import Table

    from demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(out=out, n_pairs=n_pairs, epochs=epochs, seed=seed, overwrite=overwrite),
                      progress=True)
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
