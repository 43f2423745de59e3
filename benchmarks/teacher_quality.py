"""Issue 16: how good must the teacher be? The grid of docs/results.md section 2, end to end.

    python -m benchmarks.teacher_quality grid --runs runs/teacher_quality      # synth + ablate, resumable
    python -m benchmarks.teacher_quality report --runs runs/teacher_quality \\
        --csv docs/results/teacher_quality.csv --figure docs/results/teacher_quality.png

`grid` writes one `python cli.py synth` folder per teacher preset (same generator seed, so the same pairs,
sequences and split for every teacher; only cache.h5 differs) and runs `python cli.py ablate` into one folder per
teacher: CE only once (it reads no teacher value, so its rows serve every teacher), and every map-loss variant of
VARIANTS per teacher. Seed-major order, so that a grid cut short still has every teacher at the first seeds. Every
command it runs is printed (and is all there is to it: the same commands by hand give the same rows).

`report` joins every ablate results.csv with its teacher's settings and quality (from the cache settings) into
one CSV and draws the student's gain over CE-only against the teacher's quality.

`--schedules` (both steps) names training schedules of SCHEDULES: each has folders of its own (`ablate_<teacher>_
<schedule>`), and `report` over more than the first grid's schedule prints them side by side, valid AUPR first
(what a choice may look at), with each variant's gain paired with the CE-only run of its own schedule:

    python -m benchmarks.teacher_quality grid --teachers esm-like --variants marginal-top --schedules e40-m25
    python -m benchmarks.teacher_quality report --teachers esm-like --schedules grid,e40-m25 --csv OUT.csv

`--unlabelled all` (both steps): the map runs train their map term on the train part's pairs beyond `--n-train`
too, without their labels (`train --unlabelled-pairs`), in folders `ablate_<teacher>_<schedule>_unl`;
`--unlabelled negatives`: only the non-binders among them (as a proteome's random pairs nearly all are; the
benchmark picks them by label, `train` never reads one), in folders `..._unlneg`. These two run `train --ce-norm
labelled` (CE the mean over a batch's labelled pairs, `train`'s default when they ran); `all-ce-batch` and
`negatives-ce-batch` run `--ce-norm batch` (today's default; folders `..._unl_ceb`, `..._unlneg_ceb`).

Schedule `e40-m25-b8-mf5` is e40-m25-b8 after a map-first curriculum (`train --map-first-epochs 5`); its CE-only
rows are e40-m25-b8's (CE_SCHEDULE), which a CE run of either schedule would repeat exactly.
"""
from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from benchmarks.common import ROOT, write_csv
from data.atomic import write_text_atomic
from student.evaluation.ablate import mean_std

TEACHERS = ("esm-like", "oracle", "useless", "good", "poor", "esm-like-quiet")
SYNTH = ["--n-pairs", "1000", "--valid-frac", "0.15", "--test-frac", "0.25", "--preset", "hard",
         "--min-len", "100", "--max-len", "200", "--seed", "0"]
# Every setting the grid's rows depend on is pinned here, so a change of `train`'s defaults (issue 15 changed the
# crop, the pooling and the standardisation) neither alters the grid nor makes its folders refuse a re-run.
ABLATE = ["--lr", "3e-3", "--max-len", "512", "--pool", "max", "--no-pool-norm", "--channels", "64,64",
          "--kernel-sizes", "5,5", "--embed-dim", "32", "--hidden", "32", "--beta-sem", "0", "--device", "cpu",
          "--threads", "1"]
# How long a run may train and when it stops. "grid" is the schedule of the first grid (its folders carry no suffix);
# the others let a map term work before early stopping may end a run (docs/results.md, section 2, third round).
SCHEDULES = {
    "grid": ["--epochs", "15", "--patience", "4"],
    "e6-p2": ["--epochs", "6", "--patience", "2", "--min-epochs", "0"],  # train's defaults, pinned
    "e15-m10": ["--epochs", "15", "--patience", "4", "--min-epochs", "10"],
    "e25-m10": ["--epochs", "25", "--patience", "4", "--min-epochs", "10"],
    "e25-m15": ["--epochs", "25", "--patience", "4", "--min-epochs", "15"],
    "e40-m25": ["--epochs", "40", "--patience", "4", "--min-epochs", "25"],
    # e40-m25 with batches of 8: four times the optimiser steps per epoch at about the same cost per epoch
    "e40-m25-b8": ["--epochs", "40", "--patience", "4", "--min-epochs", "25", "--batch-size", "8"],
    # e40-m25-b8 after a map-first curriculum of 5 epochs (fixed beforehand: the map loss of the b32 runs stopped
    # falling after about 5 epochs)
    "e40-m25-b8-mf5": ["--epochs", "40", "--patience", "4", "--min-epochs", "25", "--batch-size", "8",
                       "--map-first-epochs", "5"],
}
# A schedule whose CE-only runs are another's: its options reach map runs only (CE has no teacher term).
CE_SCHEDULE = {"e40-m25-b8-mf5": "e40-m25-b8"}
VARIANTS = {  # name: ablate options of the map term, each pinned (train's defaults may change)
    "bce": ["--map-loss", "bce", "--map-norm", "mass", "--alpha-map", "1", "--map-top-target", "0"],
    "bce-pos": ["--map-loss", "bce", "--map-norm", "mass", "--alpha-map", "1", "--map-pairs", "positives",
                "--map-top-target", "0"],
    "rank": ["--map-loss", "rank", "--map-norm", "mass", "--alpha-map", "1", "--map-rank-k", "16",
             "--map-top-target", "0"],
    "marginal": ["--map-loss", "marginal", "--map-norm", "mass", "--alpha-map", "1", "--map-top-target", "0"],
    "rank-pos": ["--map-loss", "rank", "--map-norm", "mass", "--alpha-map", "1", "--map-rank-k", "16",
                 "--map-pairs", "positives", "--map-top-target", "0"],
    "rank-peak": ["--map-loss", "rank", "--map-norm", "mass", "--alpha-map", "1", "--map-rank-k", "16",
                  "--map-top-target", "0", "--map-confidence"],
    "bce-top": ["--map-loss", "bce", "--map-norm", "mass", "--alpha-map", "1", "--map-top-target", "16"],
    "marginal-top": ["--map-loss", "marginal", "--map-norm", "mass", "--alpha-map", "1", "--map-top-target", "16"],
    "marginal-top32": ["--map-loss", "marginal", "--map-norm", "mass", "--alpha-map", "1", "--map-top-target", "32"],
    "marginal-top8": ["--map-loss", "marginal", "--map-norm", "mass", "--alpha-map", "1", "--map-top-target", "8"],
    "marginal-top-a0.5": ["--map-loss", "marginal", "--map-norm", "mass", "--alpha-map", "0.5",
                          "--map-top-target", "16"],
    "marginal-top-a2": ["--map-loss", "marginal", "--map-norm", "mass", "--alpha-map", "2", "--map-top-target", "16"],
}
TABLE_ORDER = ("oracle", "good", "esm-like", "esm-like-quiet", "poor", "useless")  # teachers, best first
COLUMNS = ("teacher", "schedule",
           "discrimination", "recall", "strength_min", "decoys", "decoy_strength", "offset", "noise",
           "teacher_p_l5", "teacher_aupr", "teacher_auroc", "head", "losses", "variant", "map_loss", "map_norm",
           "alpha_map", "map_pairs", "map_confidence", "map_rank_k", "map_top_target", "n_train", "seed", "aupr",
           "auroc", "map_top_l5", "valid_aupr", "epochs", "best_epoch", "seconds", "student_code")


def _run(args: list[str]) -> None:
    command = [sys.executable, "cli.py", *args]
    print("+ python " + shlex.join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def _folder(runs: Path, name: str, schedule: str, unlabelled: str = "") -> Path:
    """The ablate folder of one teacher (or "ce") under one schedule; the first grid's folders carry no suffix.
    Map runs with the train part's other pairs as unlabelled pairs (`--unlabelled`) have folders of their own."""
    folder = runs / (f"ablate_{name}" if schedule == "grid" else f"ablate_{name}_{schedule}")
    return folder.with_name(folder.name + UNLABELLED[unlabelled].suffix) if unlabelled else folder


class Unlabelled(NamedTuple):
    """A mode of --unlabelled: which train-part pairs go unlabelled, and where its runs and rows go."""
    pairs: str  # all | negatives
    file: str  # the unlabelled pairs table in the synth folder
    suffix: str  # of the ablate folder
    label: str  # added to the schedule's name in the report
    options: tuple[str, ...] = ()  # more `train` options of the map runs


# Each mode pins its CE normalisation: `train`'s default changed from labelled to batch after these rows ran.
UNLABELLED = {"all": Unlabelled("all", "unlabelled_train.tsv", "_unl", "+unl", ("--ce-norm", "labelled")),
              "negatives": Unlabelled("negatives", "unlabelled_train_negatives.tsv", "_unlneg", "+unl-neg",
                                      ("--ce-norm", "labelled")),
              # CE over a batch's labelled pairs divided by the batch size, not by their number
              "all-ce-batch": Unlabelled("all", "unlabelled_train.tsv", "_unl_ceb", "+unl+ce-batch",
                                         ("--ce-norm", "batch")),
              "negatives-ce-batch": Unlabelled("negatives", "unlabelled_train_negatives.tsv", "_unlneg_ceb",
                                               "+unl-neg+ce-batch", ("--ce-norm", "batch"))}


def write_unlabelled(synth_dir: Path, mode: str = "all") -> Path:
    """The train-part pairs of a synth folder (all, or the negatives only, as `mode` of UNLABELLED says) as an
    unlabelled pairs table (ids only). `train` leaves out the pairs of its own labelled subsample (`--n-train`), so
    the rest of the train part trains the map term only."""
    which = UNLABELLED[mode].pairs
    path = synth_dir / UNLABELLED[mode].file
    if not path.exists():  # written atomically, so a file that exists is whole
        with open(synth_dir / "pairs.tsv", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle, delimiter="\t")
                    if r["split"] == "train" and (which == "all" or r["label"] == "0")]
        write_text_atomic(path, "id_a\tid_b\n" + "".join(f"{r['id_a']}\t{r['id_b']}\n" for r in rows))
    return path


def run_grid(runs: Path, teachers: tuple[str, ...], variants: tuple[str, ...], seeds: tuple[int, ...],
             heads: str = "both", n_train: str = "500", lengths: str = "100,200",
             schedules: tuple[str, ...] = ("grid",), n_pairs: int = 1000, unlabelled: str = "") -> None:
    grid_options = ["--heads", heads, "--n-train", n_train]
    low, high = lengths.split(",")
    synth = [*SYNTH[:SYNTH.index("--min-len")], "--min-len", low, "--max-len", high, "--seed", "0"]
    synth[synth.index("--n-pairs") + 1] = str(n_pairs)
    for teacher in teachers:
        pairs = runs / f"synth_{teacher}" / "pairs.tsv"
        if pairs.exists() and (held := len(pairs.read_text().splitlines()) - 1) != n_pairs:
            raise SystemExit(f"{pairs.parent} holds {held} pairs, not --n-pairs {n_pairs}: give this size its own "
                             "--runs folder")
        if not (runs / f"synth_{teacher}" / "cache.h5").exists():
            _run(["synth", "--out", str(runs / f"synth_{teacher}"), *synth, "--teacher-preset", teacher,
                  "--overwrite"])
    for schedule in schedules:
        options = [*grid_options, *ABLATE, *SCHEDULES[schedule]]
        ce_schedule = CE_SCHEDULE.get(schedule, schedule)
        ce_options = [*grid_options, *ABLATE, *SCHEDULES[ce_schedule]]
        # CE only reads no teacher value, but ablate ties a run folder to one cache: CE always runs on the first
        # teacher's folder that CE ever ran on (esm-like in the grid of docs/results.md)
        ce_folder = _folder(runs, "ce", ce_schedule)
        ce_settings = ce_folder / "ablate.json"
        ce_data = Path(json.loads(ce_settings.read_text())["cache"]).parent if ce_settings.exists() \
            else runs / f"synth_{teachers[0]}"
        for seed in seeds:
            _run(["ablate", "--data", str(ce_data), "--out", str(ce_folder), "--losses", "ce", "--seeds", str(seed),
                  *ce_options])
            for teacher in teachers:
                extra = (["--unlabelled-pairs", str(write_unlabelled(runs / f"synth_{teacher}", unlabelled)),
                          *UNLABELLED[unlabelled].options] if unlabelled else [])
                for variant in variants:
                    _run(["ablate", "--data", str(runs / f"synth_{teacher}"),
                          "--out", str(_folder(runs, teacher, schedule, unlabelled)), "--losses", "ce+map",
                          "--seeds", str(seed), *options, *VARIANTS[variant], *extra])


def _parsed(options: list[str]) -> dict[str, str]:
    """{option: value} of a VARIANTS entry; a flag (no value follows it) maps to ""."""
    given: dict[str, str] = {}
    for i, name in enumerate(options):
        if name.startswith("--"):
            value = options[i + 1] if i + 1 < len(options) and not options[i + 1].startswith("--") else ""
            given[name] = value
    return given


def _variant(row: dict[str, str]) -> str:
    if not row["map_loss"]:
        return "ce"
    for name, options in VARIANTS.items():
        given = _parsed(options)
        peak = "--map-confidence" in given
        if (given["--map-loss"] == row["map_loss"] and given.get("--map-pairs", "all") == row["map_pairs"]
                and (row["map_confidence"] == "True") == peak
                and given.get("--map-top-target", "0") == row.get("map_top_target", "0")
                and float(given["--alpha-map"]) == float(row["alpha_map"])):
            return name
    return (f"{row['map_loss']}-{row['map_pairs']}" + ("-peak" if row["map_confidence"] == "True" else "")
            + (f"-top{row['map_top_target']}" if row.get("map_top_target", "0") != "0" else "")
            + (f"-a{row['alpha_map']}" if float(row["alpha_map"]) != 1.0 else ""))


def _teacher_settings(synth_dir: Path) -> dict[str, str]:
    from teacher_cache import TeacherCache

    with TeacherCache.open(synth_dir / "cache.h5") as cache:
        s = cache.settings
    q = s["teacher_quality"]
    return {"discrimination": s["teacher_discrimination"], "recall": s["teacher_recall"],
            "strength_min": s["teacher_strength_min"], "decoys": s["teacher_decoys"],
            "decoy_strength": s["teacher_decoy_strength"], "offset": s["teacher_offset"],
            "noise": s["teacher_noise"], "teacher_p_l5": f"{q['teacher_p_l5']:.4f}",
            "teacher_aupr": f"{q['teacher_aupr']:.4f}", "teacher_auroc": f"{q['teacher_auroc']:.4f}"}


def collect(runs: Path, teachers: tuple[str, ...], schedules: tuple[str, ...] = ("grid",),
            unlabelled: str = "") -> list[dict[str, str]]:
    """Rows of every teacher and schedule; with `unlabelled` the map runs of its folders (`_unl`, `_unlneg`), each
    schedule labelled `<schedule>+unl` (`+unl-neg`); CE only, which reads no teacher value, from the schedule's own
    CE folder."""
    from student.evaluation.ablate import read_results

    out: list[dict[str, str]] = []
    def rows_of(name: str, schedule: str) -> list[dict[str, str]]:
        path = _folder(runs, name, schedule, unlabelled if name != "ce" else "") / "results.csv"
        return read_results(path) if path.exists() else []

    for schedule in schedules:
        ce_rows = rows_of("ce", CE_SCHEDULE.get(schedule, schedule))
        for teacher in teachers:
            if not (runs / f"synth_{teacher}" / "cache.h5").exists():
                continue
            settings = _teacher_settings(runs / f"synth_{teacher}")
            rows = rows_of(teacher, schedule)
            if unlabelled and not rows:
                continue  # no run with unlabelled pairs here: its CE rows would only repeat the schedule's own
            label = schedule + (UNLABELLED[unlabelled].label if unlabelled else "")
            for row in ce_rows + rows:  # CE rows repeated per teacher (identical runs: CE reads no teacher value)
                out.append({"teacher": teacher, "schedule": label, **settings, **row, "variant": _variant(row)})
    return out


def summary(rows: list[dict[str, str]]) -> list[dict]:
    """Per (schedule, teacher, variant, head, n_train): mean/std of test and valid AUPR and map top-L/5, and the
    gain over CE-only (paired by seed, same schedule, head and n_train)."""
    ce = {(r["schedule"], r["head"], r["n_train"], r["seed"]): float(r["aupr"])
          for r in rows if r["variant"] == "ce"}
    groups: dict[tuple[str, str, str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["schedule"], r["teacher"], r["variant"], r["head"], r["n_train"]),
                          []).append(r)
    out = []
    for (schedule, teacher, variant, head, n_train), members in groups.items():
        aupr = np.array([float(r["aupr"]) for r in members])
        top = np.array([float(r["map_top_l5"]) for r in members if r["map_top_l5"]])
        gains = np.array([float(r["aupr"]) - ce[(schedule, head, n_train, r["seed"])] for r in members
                          if (schedule, head, n_train, r["seed"]) in ce])
        out.append({"schedule": schedule, "teacher": teacher, "variant": variant, "head": head,
                    "n_train": int(n_train), "seeds": len(members),
                    "teacher_p_l5": float(members[0]["teacher_p_l5"]),
                    "teacher_aupr": float(members[0]["teacher_aupr"]), "aupr": aupr, "map_top_l5": top,
                    "valid_aupr": np.array([float(r["valid_aupr"]) for r in members if r.get("valid_aupr")]),
                    "best_epochs": "/".join(f"{r['best_epoch']}:{r['epochs']}" for r in
                                            sorted(members, key=lambda r: int(r["seed"]))),
                    "gain": gains})
    return out


def schedule_markdown(groups: list[dict]) -> str:
    """Schedules side by side: valid AUPR (what a choice may look at) beside test AUPR and the paired gain."""
    lines = ["| teacher | schedule | n_train | map loss | valid AUPR | test AUPR | gain over CE (same schedule) | "
             "student map top-L/5 | best epoch:epochs run, per seed |", "|---|---|---:|---|---|---|---|---|---|"]
    order = {t: i for i, t in enumerate(TABLE_ORDER)}
    vorder = {v: i for i, v in enumerate(("ce", *VARIANTS))}
    sorder = {v: i for i, v in enumerate(SCHEDULES)}
    seen_ce = set()
    for g in sorted(groups, key=lambda g: (order.get(g["teacher"], 9), sorder.get(g["schedule"], 9),
                                           g["n_train"], vorder.get(g["variant"], 9))):
        if g["variant"] == "ce":
            if (g["schedule"], g["n_train"]) in seen_ce:
                continue  # the same rows for every teacher
            seen_ce.add((g["schedule"], g["n_train"]))
        teacher = "(none)" if g["variant"] == "ce" else g["teacher"]
        gain = "-" if g["variant"] == "ce" else mean_std(g["gain"])
        lines.append(f"| {teacher} | {g['schedule']} | {g['n_train']} | {g['variant']} | {mean_std(g['valid_aupr'])} | "
                     f"{mean_std(g['aupr'])} | {gain} | {mean_std(g['map_top_l5'])} | {g['best_epochs']} |")
    return "\n".join(lines) + "\n"


def markdown(groups: list[dict], teachers: tuple[str, ...]) -> str:
    lines = ["| n_train | head | teacher | teacher top-L/5 | teacher AUPR | map loss | test AUPR | gain over CE | "
             "student map top-L/5 | seeds |", "|---:|---|---|---:|---:|---|---|---|---|---:|"]
    order = {t: i for i, t in enumerate(TABLE_ORDER)}
    vorder = {v: i for i, v in enumerate(("ce", *VARIANTS))}
    heads = {h: i for i, h in enumerate(("both", "map", "features"))}
    first = {}
    for g in groups:
        if g["variant"] == "ce":
            first.setdefault((g["head"], g["n_train"]), g["teacher"])
    for g in sorted(groups, key=lambda g: (g["n_train"], heads.get(g["head"], 9),
                                           -1 if g["variant"] == "ce" else order.get(g["teacher"], 9),
                                           vorder.get(g["variant"], 9))):
        if g["variant"] == "ce" and g["teacher"] != first[(g["head"], g["n_train"])]:
            continue  # the same rows for every teacher
        if g["variant"] == "ce":
            lines.append(f"| {g['n_train']} | {g['head']} | (none) | - | - | ce only | {mean_std(g['aupr'])} | - | "
                         f"{mean_std(g['map_top_l5'])} | {g['seeds']} |")
            continue
        lines.append(f"| {g['n_train']} | {g['head']} | {g['teacher']} | {g['teacher_p_l5']:.3f} | "
                     f"{g['teacher_aupr']:.3f} | {g['variant']} | "
                     f"{mean_std(g['aupr'])} | {mean_std(g['gain'])} | "
                     f"{mean_std(g['map_top_l5'])} | {g['seeds']} |")
    return "\n".join(lines) + "\n"


def plot(groups: list[dict], path: Path) -> None:
    from student.plots import pyplot, save_figure

    plt = pyplot()
    ladder = ("oracle", "good", "esm-like", "poor", "useless")  # the teacher axis (knob ablations are tables only)
    groups = [g for g in groups if g["head"] == "both" and g["n_train"] == 500 and g["teacher"] in ladder]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    variants = [v for v in VARIANTS if any(g["variant"] == v for g in groups)]
    for number, variant in enumerate(variants):
        members = sorted((g for g in groups if g["variant"] == variant), key=lambda g: g["teacher_p_l5"])
        for ax, quality in zip(axes, ("teacher_p_l5", "teacher_aupr")):
            x = np.array([g[quality] for g in members]) + 0.006 * (number - (len(variants) - 1) / 2)
            y = [g["gain"].mean() for g in members]
            e = [g["gain"].std(ddof=1) if g["gain"].size > 1 else 0.0 for g in members]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=variant)
    for ax, label in zip(axes, ("teacher map top-L/5 precision vs truth", "teacher AUPR (map max as pair score)")):
        ax.axhline(0.0, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(label)
        ax.set_ylabel("student test AUPR − CE-only (paired by seed)")
    for g in groups:
        if g["variant"] == "bce":
            axes[0].annotate(g["teacher"], (g["teacher_p_l5"], g["gain"].mean()), fontsize=7,
                             textcoords="offset points", xytext=(4, 4))
    axes[0].legend(fontsize=8, title="map loss", title_fontsize=8)
    fig.suptitle("Hard planted benchmark (100-200 aa grid variant), 500 training pairs, head both, mean ± std "
                 "over seeds", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("grid", "report"))
    parser.add_argument("--runs", default="runs/teacher_quality")
    parser.add_argument("--teachers", default=",".join(TEACHERS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--heads", default="both")
    parser.add_argument("--n-train", default="500")
    parser.add_argument("--lengths", default="100,200", help="min,max protein length of the synth sets (the hard "
                                                               "preset's own is 200,500)")
    parser.add_argument("--n-pairs", type=int, default=1000, help="pairs of each synth set (60%% train); a size "
                                                                    "other than the grid's needs its own --runs")
    parser.add_argument("--schedules", default="grid", help=f"comma-separated, of {', '.join(SCHEDULES)}")
    parser.add_argument("--unlabelled", default="",
                        help="map runs also train their map term on the train part's pairs beyond --n-train (all, or "
                             "the negatives only), unlabelled (`train --unlabelled-pairs`), in folders of their own; "
                             "report: a comma-separated list, `none` for the runs without unlabelled pairs")
    parser.add_argument("--csv", default="docs/results/teacher_quality.csv")
    parser.add_argument("--figure", default="docs/results/teacher_quality.png")
    args = parser.parse_args(argv)
    runs, teachers = (ROOT / args.runs).resolve(), tuple(args.teachers.split(","))  # absolute, as ablate.json stores
    schedules = tuple(args.schedules.split(","))
    unknown = [s for s in schedules if s not in SCHEDULES]
    if unknown:
        parser.error(f"unknown schedule(s) {', '.join(unknown)} (one of {', '.join(SCHEDULES)})")
    modes = ["" if m == "none" else m for m in args.unlabelled.split(",")] if args.unlabelled else [""]
    if any(m and m not in UNLABELLED for m in modes) or (args.step == "grid" and len(modes) > 1):
        parser.error(f"--unlabelled: one of {', '.join(UNLABELLED)} for grid; a list of them and none for report")
    if args.step == "grid":
        run_grid(runs, teachers, tuple(args.variants.split(",")), tuple(int(s) for s in args.seeds.split(",")),
                 args.heads, args.n_train, args.lengths, schedules, args.n_pairs, modes[0])
        return
    rows = [row for mode in modes for row in collect(runs, teachers, schedules, mode)]
    write_csv(Path(args.csv), rows, list(COLUMNS))
    groups = summary(rows)
    if schedules == ("grid",) and modes == [""]:
        print(markdown(groups, teachers))
        plot(groups, Path(args.figure))
        print(f"wrote {args.csv}, {args.figure}")
    else:  # a comparison of schedules: a table, no figure (the figure is the grid's teacher axis)
        print(schedule_markdown(groups))
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
