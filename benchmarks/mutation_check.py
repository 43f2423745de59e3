"""Mutation check of the critical paths: does the suite fail when one line of a promise breaks?

Each entry of MUTANTS is a one-line (or one-statement) change of the library: the file, the exact original text
(it must occur exactly once), its replacement, the test files (or test ids) that guard it, and why it matters.
For every mutant the check copies the checkout (the files `git ls-files` lists, tracked and untracked-not-ignored,
as they are in the working tree; never the working tree itself, which others may be editing) into a temporary
folder once, applies the mutant there, runs only its tests (`pytest -x`, with a time limit), and restores the file.
A mutant is *killed* when its tests fail (or time out) and *survives* when they pass. First the tests of every
mutant run once unmutated: they must pass, or the results would mean nothing.

    python -m benchmarks.mutation_check                    # every mutant; exit 1 if any survives or is stale
    python -m benchmarks.mutation_check --only tiling --list
    python -m benchmarks.mutation_check --jobs 2 --json bench_out/mutation_check.json

A mutant whose original text is no longer in its file (the code moved) is reported as *stale* and fails the check:
update the entry. Mutants that cannot change any behaviour (equivalent mutants) are not run; EQUIVALENT says why
each is harmless, so nobody adds them back expecting a test to catch them. A new promise gets a mutant here and a
test that kills it (`--only NAME -v` shows which test failed). The whole run (59 mutants and the baseline) takes
about 3.5 minutes on 2 CPU cores, one mutant at a time; child processes run with OMP_NUM_THREADS=1 and write no
bytecode, so a restored file is never shadowed by a mutant's cached .pyc.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, write_result


@dataclass(frozen=True)
class Mutant:
    name: str  # area/what, e.g. "tiling/b-window-from-start"
    path: str  # file, relative to the repository root
    original: str  # exact text, occurring once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest arguments: test files or test ids
    why: str  # the promise it breaks


RUNNER = "teacher_cache/teachers/esm_runner.py"
PRECOMPUTE = "teacher_cache/teachers/precompute.py"
TILING = "teacher_cache/teachers/tiling.py"
LOCK = "data/lock.py"  # FileLock; teacher_cache.lock.CacheLock is a FileLock
T_RUNNER = "tests/test_runner.py"
T_TEACHER = "tests/test_promises_teacher.py"
T_STUDENT = "tests/test_promises_student.py"

MUTANTS: list[Mutant] = [
    # -- padding masks -------------------------------------------------------------------------------------------
    Mutant("padding/batchnorm-output-unmasked", "student/model.py",
           "        return out * mask[:, None, :].to(out.dtype)", "        return out",
           ("tests/test_model.py",),
           "batch-norm shifts padded positions away from zero, so padding leaks into the next convolution"),
    Mutant("padding/map-cells-unmasked", "student/model.py",
           "        return logits.masked_fill(~valid, MASKED_LOGIT)", "        return logits",
           ("tests/test_model.py",), "cells outside either sequence would enter the map statistics and the loss"),
    Mutant("padding/teacher-attends-to-padding", RUNNER,
           "        return x, (padding_mask if has_padding else None)", "        return x, None",
           (f"{T_RUNNER}::test_pair_maps_do_not_depend_on_batch_padding",),
           "a pair's teacher maps would depend on the longest pair of its batch"),
    Mutant("padding/apc-sums-include-eos-and-padding", RUNNER,
           "                inner = attn[row, :, 1:n + 1, 1:n + 1].float()",
           "                inner = attn[row, :, 1:, 1:].float()",
           (f"{T_RUNNER}::test_pair_maps_do_not_depend_on_batch_padding", T_RUNNER),
           "APC row sums would count EOS and padding, unlike fair-esm's contact head"),
    Mutant("padding/screen-block-unmasked", "student/screening/score.py",
           "        pad = torch.where(mask, 0.0, MASKED_LOGIT).to(feat.dtype)  # (n, L)",
           "        pad = torch.where(mask, 0.0, 0.0).to(feat.dtype)  # (n, L)",
           ("tests/test_screen.py::test_block_scores_do_not_depend_on_padding",),
           "screen scores would depend on the other proteins of a block"),
    Mutant("padding/collate-mask-all-true", "student/dataset.py",
           '"mask_a": tokens_a != PAD_INDEX', '"mask_a": tokens_a >= PAD_INDEX',
           ("tests/test_model.py", "tests/test_training.py", "tests/test_predict.py"),
           "training batches would treat padding of A as residues"),
    # -- symmetry --------------------------------------------------------------------------------------------------
    Mutant("symmetry/attention-ab-only", RUNNER,
           "                    attention[row] += (block_ab.mean(0) + block_ba.mean(0).T) / 2",
           "                    attention[row] += block_ab.mean(0)",
           (T_RUNNER,), "the attention map is documented as (AB + BA^T) / 2"),
    Mutant("symmetry/contact-rows-one-sided", RUNNER,
           "                rows = inner.sum(-1) + inner.sum(-2)  # (H, n)",
           "                rows = 2 * inner.sum(-1)  # (H, n)",
           (T_RUNNER,), "the contact head symmetrises attention before APC"),
    Mutant("symmetry/contact-ab-block-only", RUNNER,
           "                logits[row] += (torch.tensordot(weight, block_ab, dims=1) + "
           "torch.tensordot(weight, block_ba, dims=1).T",
           "                logits[row] += (2 * torch.tensordot(weight, block_ab, dims=1)",
           (T_RUNNER,), "contact logits must use the symmetrised A x B block"),
    Mutant("symmetry/features-head-ordered", "student/model.py",
           "            terms = [pooled_a + pooled_b, pooled_a * pooled_b]",
           "            terms = [pooled_a, pooled_b]",
           ("tests/test_model.py::test_symmetry",), "p(A, B) must equal p(B, A)"),
    Mutant("padding/length-of-the-crop", "student/dataset.py",
           '"length_a": len(pair.seq_a), "length_b": len(pair.seq_b)}  # before cropping',
           '"length_a": stop_a - start_a, "length_b": stop_b - start_b}',
           ("tests/test_pooling.py",), "training would read the crop's length, evaluation the protein's"),
    # -- canonical pair order ----------------------------------------------------------------------------------
    Mutant("canonical/order-reversed", "data/keys.py",
           "    if key_b < key_a:", "    if key_b > key_a:",
           ("tests/test_legacy_files.py", "tests/test_cache.py"),
           "caches already written store key_a < key_b; reversing the rule reads them transposed"),
    Mutant("canonical/writer-does-not-transpose", "teacher_cache/writer.py",
           "        if swapped:\n            contact, attention = contact.T, attention.T",
           "        if False:\n            contact, attention = contact.T, attention.T",
           ("tests/test_cache.py::test_round_trip_both_orientations",),
           "a pair given as (B, A) would be stored with B's residues as rows"),
    Mutant("canonical/reader-does-not-transpose", "teacher_cache/reader.py",
           "        if swapped:\n            contact, attention = contact.T.copy(), attention.T.copy()",
           "        if False:\n            contact, attention = contact.T.copy(), attention.T.copy()",
           ("tests/test_cache.py::test_round_trip_both_orientations",),
           "reading (B, A) would return the A x B map"),
    Mutant("canonical/teacher-runs-table-order", PRECOMPUTE,
           "unique_pairs.setdefault((first, second), (seq_b, seq_a) if swapped else (seq_a, seq_b))",
           "unique_pairs.setdefault((first, second), (seq_a, seq_b))",
           ("tests/test_precompute.py::test_stored_maps_and_embeddings_match_fair_esm",),
           "the teacher must see every pair as first + linker + second whatever the table's order"),
    Mutant("canonical/screen-argmax-not-swapped", "student/screening/screen.py",
           "            if swapped:\n                arg_a, arg_b = arg_b, arg_a",
           "            if False:\n                arg_a, arg_b = arg_b, arg_a",
           ("tests/test_screen.py::test_every_pair_once_and_equal_to_predict",),
           "reported residues must be oriented as id_a x id_b"),
    # -- tiling offsets ------------------------------------------------------------------------------------------
    Mutant("tiling/b-window-from-start", PRECOMPUTE,
           "pairs[tasks[i][0]][1][slice(*tasks[i][2])])",
           "pairs[tasks[i][0]][1][:tasks[i][2][1] - tasks[i][2][0]])",
           (f"{T_TEACHER}::test_tiled_pair_maps_equal_the_per_window_reference",),
           "every B window would be cut from B's start (issue 21's example)"),
    Mutant("tiling/a-window-from-start", PRECOMPUTE,
           "inputs = [(pairs[tasks[i][0]][0][slice(*tasks[i][1])], ",
           "inputs = [(pairs[tasks[i][0]][0][:tasks[i][1][1] - tasks[i][1][0]], ",
           (f"{T_TEACHER}::test_tiled_pair_maps_equal_the_per_window_reference",),
           "every A window would be cut from A's start"),
    Mutant("tiling/chain-window-from-start", PRECOMPUTE,
           "        texts = [tasks[i][0][slice(*tasks[i][1])] for i in batch]",
           "        texts = [tasks[i][0][:tasks[i][1][1] - tasks[i][1][0]] for i in batch]",
           (f"{T_TEACHER}::test_tiled_protein_embeddings_equal_the_per_window_reference",),
           "tiled protein embeddings would repeat the first window"),
    Mutant("tiling/no-overlap", TILING, "    step = size - overlap", "    step = size",
           ("tests/test_tiling.py",), "neighbouring windows must share `overlap` residues"),
    Mutant("tiling/last-window-dropped", TILING,
           "    starts = list(range(0, length - size, step)) + [length - size]",
           "    starts = list(range(0, length - size, step))",
           ("tests/test_tiling.py",), "the chain's end would be left uncovered"),
    Mutant("tiling/map-overlaps-summed", TILING, "        self.counts[rows, cols] += 1",
           "        self.counts[rows, cols] = 1", ("tests/test_tiling.py",),
           "a cell covered by several windows is their mean, not their sum"),
    Mutant("tiling/row-overlaps-summed", TILING, "        self.counts[slice(*window)] += 1",
           "        self.counts[slice(*window)] = 1",
           ("tests/test_tiling.py", f"{T_TEACHER}::test_tiled_protein_embeddings_equal_the_per_window_reference"),
           "a residue covered by several windows gets their mean embedding"),
    Mutant("tiling/budget-forgets-bos-eos", TILING, "    budget = max_tokens - 2 - linker_length  # BOS and EOS",
           "    budget = max_tokens - linker_length  # BOS and EOS", ("tests/test_tiling.py",),
           "a window's input (BOS + A + linker + B + EOS) must fit max_tokens"),
    # -- tokenisation ------------------------------------------------------------------------------------------
    Mutant("tokens/eos-for-bos", RUNNER, "            tokens[row, 0] = self.alphabet.cls_idx",
           "            tokens[row, 0] = self.alphabet.eos_idx",
           (f"{T_TEACHER}::test_runner_tokens_equal_fair_esm_batch_converter",),
           "the teacher's input must be fair-esm's BOS + sequence + EOS (issue 21's example)"),
    Mutant("tokens/no-eos", RUNNER, "            tokens[row, len(text) + 1] = self.alphabet.eos_idx",
           "            tokens[row, len(text) + 1] = self.alphabet.padding_idx",
           (f"{T_TEACHER}::test_runner_tokens_equal_fair_esm_batch_converter",),
           "fair-esm appends EOS to every sequence"),
    Mutant("tokens/extra-padding-column", RUNNER, "        width = max(len(text) for text in texts) + 2",
           "        width = max(len(text) for text in texts) + 3",
           (f"{T_TEACHER}::test_runner_tokens_equal_fair_esm_batch_converter",),
           "an extra padding column that the has_padding shortcut would let the model attend to"),
    Mutant("tokens/rare-residues-unknown", RUNNER, "            if len(token) == 1:",
           '            if len(token) == 1 and token not in "XBUZO":',
           (f"{T_TEACHER}::test_runner_tokens_equal_fair_esm_batch_converter",),
           "X B U Z O are fair-esm tokens of their own, not <unk>"),
    Mutant("tokens/linker-misplaced", RUNNER,
           "        tokens = self._tokens([a + linker + b for a, b in pairs])",
           "        tokens = self._tokens([a + b + linker for a, b in pairs])",
           (T_RUNNER, T_TEACHER), "pairs run as A + linker + B"),
    Mutant("tokens/embedding-rows-include-bos", RUNNER,
           "        return [x[row, 1:len(seq) + 1] for row, seq in enumerate(sequences)]",
           "        return [x[row, :len(seq)] for row, seq in enumerate(sequences)]",
           (f"{T_RUNNER}::test_residue_embeddings_equal_fair_esm_and_ignore_padding",),
           "per-residue embeddings drop the BOS row"),
    Mutant("tokens/student-residue-is-padding", "data/alphabet.py", "    _LOOKUP[ord(_c)] = _i + 1",
           "    _LOOKUP[ord(_c)] = _i", ("tests/test_data.py", "tests/test_model.py", "tests/test_legacy_files.py"),
           "the student's index 0 is padding: the first residue letter would be masked out"),
    # -- resume ----------------------------------------------------------------------------------------------------
    Mutant("resume/train-ignores-last-pt", "student/trainer.py",
           '    if state is not None:\n        model.load_state_dict(state["model"])',
           '    if False:\n        model.load_state_dict(state["model"])',
           (f"{T_STUDENT}::test_resume_runs_only_the_remaining_epochs",),
           "--resume restarting at epoch 0 reproduces the weights (training is deterministic) but redoes the work "
           "(issue 21's example)"),
    Mutant("resume/train-repeats-an-epoch", "student/trainer.py",
           '        start_epoch, best_aupr = trainer_state["next_epoch"], trainer_state["best_aupr"]',
           '        start_epoch, best_aupr = trainer_state["next_epoch"] - 1, trainer_state["best_aupr"]',
           (f"{T_STUDENT}::test_resume_runs_only_the_remaining_epochs",), "a finished epoch is never run again"),
    Mutant("resume/train-forgets-history", "student/trainer.py",
           '        history = list(trainer_state["history"])', "        history = []",
           (f"{T_STUDENT}::test_resume_runs_only_the_remaining_epochs",),
           "history.csv keeps the rows of the epochs run before the interruption"),
    Mutant("resume/precompute-ignores-parts", PRECOMPUTE, "            done.pairs.update(keys[0])",
           "            pass", ("tests/test_precompute.py::test_resume_after_interrupt_with_parts_and_stale_partial",),
           "a re-run computes only what the finished parts lack"),
    Mutant("resume/screen-restarts", "student/screening/screen.py", "            state, kept = loaded",
           "            pass", ("tests/test_screen.py::test_resume_after_interruption",),
           "a resumed screen continues from its next block"),
    # -- lock --------------------------------------------------------------------------------------------------------
    Mutant("lock/never-released", LOCK,
           "    def __exit__(self, *exc_info: object) -> None:\n        if self._fd is not None:",
           "    def __exit__(self, *exc_info: object) -> None:\n        if False:",
           ("tests/test_cache.py::test_lock_refuses_a_second_holder",
            "tests/test_precompute.py::test_stored_maps_and_embeddings_match_fair_esm"),
           "a finished writer must release the lock (and remove its file)"),
    Mutant("lock/not-taken", LOCK,
           "            fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)",
           "            pass", ("tests/test_cache.py::test_lock_refuses_a_second_holder",
                              "tests/test_cache.py::test_lock_held_by_another_process"),
           "two writers must never interleave"),
    # -- atomic rename -----------------------------------------------------------------------------------------------
    Mutant("atomic/outputs-written-in-place", "data/atomic.py",
           '    tmp = path.with_name(f"{path.stem}.partial-{os.getpid()}{path.suffix}")', "    tmp = path",
           ("tests/test_data.py::test_atomic_path_replaces_on_success_and_leaves_nothing_on_failure",),
           "an output is complete or absent; a failure keeps the old file"),
    Mutant("atomic/cache-written-in-place", "teacher_cache/writer.py",
           '        self.tmp_path = Path(f"{self.path}.partial-{os.getpid()}")', "        self.tmp_path = self.path",
           ("tests/test_cache.py::test_exception_inside_builder_leaves_nothing",),
           "a cache appears under its name only when complete"),
    Mutant("atomic/checkpoint-written-in-place", "student/checkpoint.py", "        torch.save(payload, tmp)",
           "        torch.save(payload, path)", ("tests/test_training.py::test_train_writes_run",),
           "checkpoints are renamed into place"),
    # -- weights_only ------------------------------------------------------------------------------------------------
    Mutant("weights_only/student-checkpoint", "student/checkpoint.py",
           "torch.load(path, map_location=device, weights_only=True)",
           "torch.load(path, map_location=device, weights_only=False)",
           (f"{T_STUDENT}::test_checkpoint_with_a_pickled_object_is_refused_and_never_run",),
           "a student checkpoint may come from anywhere: loading it must never run code (issue 21's example)"),
    Mutant("weights_only/teacher-checkpoint", RUNNER,
           'torch.load(path, map_location="cpu", weights_only=True)',
           'torch.load(path, map_location="cpu", weights_only=False)',
           (f"{T_RUNNER}::test_checkpoint_with_other_objects_is_refused_not_unpickled",),
           "a teacher file is only tensors and fair-esm's Namespace"),
    # -- --debug, parts, screen, precision --------------------------------------------------------------------------
    Mutant("debug/ignored", "cli.py", '            if message is None or ctx.params.get("debug"):',
           "            if message is None:", (f"{T_STUDENT}::test_debug_prints_the_traceback_of_a_user_error",),
           "--debug shows the traceback of user errors (issue 21's example)"),
    Mutant("parts/foreign-part-discarded-without-overwrite", PRECOMPUTE,
           '                if not overwrite:\n                    raise CacheError(\n                        f"{part} holds',
           '                if False:\n                    raise CacheError(\n                        f"{part} holds',
           (f"{T_TEACHER}::test_part_with_another_fingerprint_is_refused_unless_overwrite",),
           "another run's unfinished work is only discarded with --overwrite"),
    Mutant("parts/foreign-part-merged", PRECOMPUTE, "            if part_fingerprint != expected:",
           "            if False:", (f"{T_TEACHER}::test_part_with_another_fingerprint_is_refused_unless_overwrite",),
           "results of other settings never enter the cache"),
    Mutant("parts/unreadable-part-fatal", PRECOMPUTE,
           "            except CacheError as exc:  # parts are renamed into place complete",
           "            except ValueError as exc:  # parts are renamed into place complete",
           (f"{T_TEACHER}::test_unreadable_part_is_discarded_and_its_work_recomputed",),
           "a damaged part is discarded and its work recomputed, not fatal"),
    Mutant("screen/coarse-reports-unscored", "student/screening/screen.py",
           "        return candidates(rows, cols, logits, self.plan.tie_keys(rows, cols)), len(rows)",
           "        exact = len(rows); rows, cols, logits = (np.concatenate([rows, (local_r + block.rows[0])[~chosen]]), "
           "np.concatenate([cols, (local_c + block.cols[0])[~chosen]]), np.concatenate([logits, self._score_tile("
           "np.arange(*block.rows), np.arange(*block.cols), local_r, local_c, True)[~chosen]])) if coarse else "
           "(rows, cols, logits); return candidates(rows, cols, logits, self.plan.tie_keys(rows, cols)), exact",
           (f"{T_STUDENT}::test_coarse_screen_with_min_prob_reports_only_rescored_pairs",),
           "with --min-prob in coarse mode only re-scored pairs are reported (never a coarse score)"),
    Mutant("screen/coarse-rescores-everything", "student/screening/screen.py",
           "            chosen = logits >= self.config.coarse_threshold", "            chosen = logits >= -np.inf",
           (f"{T_STUDENT}::test_coarse_screen_with_min_prob_reports_only_rescored_pairs",),
           "the coarse pass must send only the calibrated share of pairs to exact scoring"),
    Mutant("training/min-epochs-ignored", "student/trainer.py",
           "    return bad_epochs >= config.patience and epochs_done >= config.min_epochs",
           "    return bad_epochs >= config.patience",
           ("tests/test_training.py::test_min_epochs_holds_early_stopping_back",),
           "early stopping must wait for --min-epochs (a map term can need the epochs)"),
    Mutant("ablate/unlabelled-pairs-not-a-folder-setting", "student/evaluation/config.py",
           'SHARED_SETTING_NAMES = ("pairs", "fasta", "cache", "unlabelled_pairs", "map_target",',
           'SHARED_SETTING_NAMES = ("pairs", "fasta", "cache", "map_target",',
           ("tests/test_ablate.py::test_unlabelled_pairs_and_ce_norm_are_settings_of_the_whole_folder",),
           "rows trained with and without unlabelled pairs must never share one results.csv"),
    Mutant("ablate/ce-norm-a-difference-without-unlabelled-pairs", "student/evaluation/ablate.py",
           '        meaning = [s if s.get("unlabelled_pairs") else {**s, "ce_norm": None} for s in (earlier, shared)]',
           "        meaning = [earlier, shared]",
           ("tests/test_ablate.py::test_unlabelled_pairs_and_ce_norm_are_settings_of_the_whole_folder",),
           "without unlabelled pairs the two CE normalisations are one loss: a folder must not refuse the other"),
    Mutant("losses/ce-norm-ignored", "student/losses.py",
           '        loss = parts["ce"] * ce_weight * (labelled.float().mean() if ce_norm == "batch" else 1.0)',
           '        loss = parts["ce"] * ce_weight',
           ("tests/test_unlabelled.py::test_ce_norm_batch_divides_the_labelled_pairs_ce_by_the_batch_size",),
           "--ce-norm batch must weigh each label by 1 / batch size, not 1 / labelled pairs in the batch"),
    Mutant("trainer/map-first-epochs-keep-ce", "student/trainer.py",
           "            ce_weight = 0.0 if map_first else 1.0",
           "            ce_weight = 1.0",
           ("tests/test_curriculum.py::test_map_first_epochs_train_the_map_term_alone_and_are_never_the_best_epoch",),
           "the map-first curriculum's epochs train the teacher terms alone"),
    Mutant("ablate/ce-only-with-curriculum", "student/evaluation/ablate.py",
           '        shared["map_first_epochs"] = 0  # a curriculum of the teacher terms: a CE-only run has none',
           "        pass",
           ("tests/test_curriculum.py::test_ablate_runs_ce_only_without_the_curriculum_and_keeps_it_a_folder_setting",),
           "a CE-only row of a curriculum folder trains CE from its first epoch"),
    Mutant("screen/slice-counts-of-first-slice", "student/screening/score.py",
           "            out.append(self.map_statistics(logits, n_valid[start:start + step], topk, in_place=True))",
           "            out.append(self.map_statistics(logits, n_valid[:len(part)], topk, in_place=True))",
           ("tests/test_screen.py::test_block_statistics_equal_the_model_in_slices",),
           "each slice of a block must divide its log-mean-exp by its own pairs' cell counts"),
    Mutant("precision/screen-exp2-natural-units", "student/screening/score.py",
           "shifted.mul_(LOG2E).clamp_(min=EXP_FLOOR * LOG2E).exp2_()",
           "shifted.clamp_(min=EXP_FLOOR * LOG2E).exp2_()",
           ("tests/test_screen.py::test_pair_logits_in_slices_equal_classify",),
           "exp2 needs its argument in base-2 units: the log-mean-exp would be the model's no longer"),
    Mutant("precision/half-attention-zeroed", RUNNER,
           "                    attention[row] += (block_ab.mean(0) + block_ba.mean(0).T) / 2",
           "                    attention[row] += (block_ab.mean(0) + block_ba.mean(0).T) / 2 * "
           "(attn.dtype == torch.float32)",
           (f"{T_TEACHER}::test_bf16_maps_match_fp32_relative_to_their_spread",),
           "bf16 maps equal fp32 within a bound below the values compared (issue 21: test_runner's absolute 0.02 "
           "passes this all-zero attention map)"),
    Mutant("precision/half-maps-zeroed", RUNNER,
           "                inner = attn[row, :, 1:n + 1, 1:n + 1].float()",
           "                inner = attn[row, :, 1:n + 1, 1:n + 1].float() * (attn.dtype == torch.float32)",
           (f"{T_TEACHER}::test_bf16_maps_match_fp32_relative_to_their_spread",),
           "bf16 contact and attention maps must carry the model's values, not a constant"),
]

# Mutants not run because they cannot change behaviour; kept here so nobody expects a test to catch them.
EQUIVALENT = [
    ("student/model.py", "            x = conv(x * m)", "            x = conv(x)",
     "the input of every convolution is already zero at padded positions: the embedding of PAD is zero "
     "(padding_idx) and each MaskedBatchNorm1d output is multiplied by the mask (ReLU keeps 0 at 0)"),
    ("student/model.py", '            pooled.append(feat.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1))',
     "            pooled.append(feat.amax(dim=1))",
     "features are ReLU outputs (>= 0) and zero at padded positions, so padding never raises a max"),
    (LOCK, "            fcntl.flock(self._fd, fcntl.LOCK_UN)", "            pass",
     "os.close on the next line releases the flock anyway: no process forks while holding a lock (precompute's "
     "writer and compressor are threads), so the fd is the only one on its open file description"),
    (PRECOMPUTE, "                part.unlink(missing_ok=True)\n                continue", "                continue",
     "an unreadable part left in OUT.parts is skipped by every run and removed with the folder when the run ends"),
]


# -- machinery -----------------------------------------------------------------------------------------------------
SKIPPED_PARTS = {".git", ".venv", "__pycache__", ".pytest_cache", "bench_out", "demo_out", "runs"}


def checkout_files(root: Path) -> list[str]:
    """The files of the checkout: tracked and untracked-not-ignored ones (a tree that is no git checkout: every
    file outside caches, virtual environments and run outputs)."""
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = [path.relative_to(root).as_posix() for path in root.rglob("*")
                  if not SKIPPED_PARTS & set(path.relative_to(root).parts) and not path.name.endswith(".pyc")]
    return [name for name in listed if name and (root / name).is_file()]


def copy_checkout(root: Path, dest: Path) -> None:
    for name in checkout_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def child_env() -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return env


def run_pytest(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """("passed" | "failed" | "timeout", seconds, output tail) of `pytest -x` on `tests` inside `copy`."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=copy, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        status = "passed" if process.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        status = "timeout"
    return status, time.perf_counter() - started, "\n".join((output or "").strip().splitlines()[-15:])


def stale(copy: Path, mutant: Mutant) -> str | None:
    path = copy / mutant.path
    if not path.is_file():
        return f"{mutant.path} does not exist"
    count = path.read_text().count(mutant.original)
    return None if count == 1 else f"original text found {count} times in {mutant.path}"


def run_mutant(copy: Path, mutant: Mutant, timeout: float) -> dict:
    problem = stale(copy, mutant)
    if problem:
        return {"name": mutant.name, "result": "stale", "seconds": 0.0, "caught_by": "", "detail": problem}
    path = copy / mutant.path
    text = path.read_text()
    path.write_text(text.replace(mutant.original, mutant.replacement))
    try:
        status, seconds, tail = run_pytest(copy, mutant.tests, timeout)
    finally:
        path.write_text(text)
    result = {"passed": "survived", "failed": "killed", "timeout": "killed (timeout)"}[status]
    caught = [line for line in tail.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return {"name": mutant.name, "result": result, "seconds": round(seconds, 1),
            "caught_by": caught[0][:160] if caught else "", "detail": tail if result == "survived" else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="run the mutants whose name contains one of these")
    parser.add_argument("--skip", nargs="*", default=[], help="leave out the mutants whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the selected mutants and exit")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once, each in its own copy")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant's test run")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the tests")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the failure that killed each mutant")
    parser.add_argument("--json", type=Path, help="also write the results here (benchmarks.common format)")
    args = parser.parse_args()

    mutants = [m for m in MUTANTS if (not args.only or any(word in m.name for word in args.only))
               and not any(word in m.name for word in args.skip)]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name:48s} {mutant.path}: {mutant.why}")
        return
    started = time.perf_counter()
    jobs = max(1, min(args.jobs, len(mutants)))
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as temp:
        copies = [Path(temp) / f"copy{k}" for k in range(jobs)]
        for copy in copies:
            copy_checkout(ROOT, copy)
        where = subprocess.run([sys.executable, "-c", "import data; print(data.__file__)"], cwd=copies[0],
                               env=child_env(), capture_output=True, text=True, check=True).stdout.strip()
        if not Path(where).resolve().is_relative_to(copies[0].resolve()):
            sys.exit(f"the copy imports the project from {where}, not from the copy: mutants would not be tested")

        for path, original, _, _ in EQUIVALENT:
            file = copies[0] / path
            if not file.is_file() or file.read_text().count(original) != 1:
                print(f"note: the equivalent mutant of {path} ({original.strip()[:50]}) no longer matches its "
                      "code: check that its reason still holds, and update EQUIVALENT", flush=True)

        if not args.no_baseline:
            tests = tuple(dict.fromkeys(t for m in mutants if not stale(copies[0], m) for t in m.tests))
            status, seconds, tail = run_pytest(copies[0], tests, args.timeout * 2)
            print(f"baseline (unmutated, {len(tests)} test arguments): {status} in {seconds:.0f} s", flush=True)
            if status != "passed":
                sys.exit(f"the tests fail without any mutant; fix them first:\n{tail}")

        results: list[dict] = []
        free = list(copies)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            pending = {}
            queue = list(mutants)
            while queue or pending:
                while queue and free:
                    copy = free.pop()
                    mutant = queue.pop(0)
                    pending[pool.submit(run_mutant, copy, mutant, args.timeout)] = copy
                done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    free.append(pending.pop(future))
                    result = future.result()
                    results.append(result)
                    print(f"{result['result']:17s} {result['seconds']:6.1f} s  {result['name']}", flush=True)
                    if args.verbose and result["caught_by"]:
                        print(f"    {result['caught_by']}", flush=True)
                    if result["detail"]:
                        print("    " + result["detail"].replace("\n", "\n    "), flush=True)

    order = {m.name: k for k, m in enumerate(mutants)}
    results.sort(key=lambda r: order[r["name"]])
    counts = {kind: sum(r["result"].startswith(kind) for r in results) for kind in ("killed", "survived", "stale")}
    wall = time.perf_counter() - started
    print(f"{len(results)} mutants: {counts['killed']} killed, {counts['survived']} survived, {counts['stale']} stale "
          f"({len(EQUIVALENT)} equivalent mutants listed, not run); {wall:.0f} s")
    if args.json:
        write_result(args.json, {"mutants": results, "counts": counts, "jobs": jobs, "seconds": round(wall, 1),
                                 "equivalent": [{"path": p, "original": o, "why": w} for p, o, _, w in EQUIVALENT]})
    if counts["survived"] or counts["stale"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
