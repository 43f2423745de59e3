"""The data layer: FASTA and pairs validation (every error names the file and line), alphabet, keys, splits."""
from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from data.alphabet import PAD_INDEX, RESIDUES, VOCAB_SIZE, encode, encode_batch
from data.errors import InputError, UserError
from data.fasta import read_fasta, write_fasta
from data.keys import canonical_pair, sequence_key
from data.pairs import Pair, read_pairs, write_pairs
from data.splits import assign_splits
from tests.helpers import random_sequence


def where(path: Path, line: int | None = None) -> str:
    """Regex for the 'file:line: ' prefix of an InputError."""
    return re.escape(f"{path}:{line}: " if line is not None else f"{path}: ")


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# -- alphabet and keys -----------------------------------------------------------------------------------

def test_alphabet_equals_fair_esm_amino_acid_tokens():
    esm_constants = pytest.importorskip("esm.constants")
    assert list(RESIDUES) == esm_constants.proteinseq_toks["toks"][:25]
    assert VOCAB_SIZE == len(RESIDUES) + 1 and PAD_INDEX == 0


def test_encode_and_pad():
    tokens = encode_batch(["LA", "GVS"])
    assert tokens.tolist() == [[1, 2, PAD_INDEX], [3, 4, 5]]
    assert encode("XBZUO").min() > PAD_INDEX
    with pytest.raises(ValueError, match="J"):
        encode("ACJ")


def test_sequence_keys_depend_on_content_only():
    assert sequence_key("MKV") == sequence_key("".join(["M", "K", "V"]))
    assert sequence_key("MKV") != sequence_key("MKVA")
    assert len(sequence_key("MKV")) == 64
    a, b = sequence_key("MKV"), sequence_key("GGG")
    assert canonical_pair(a, b)[:2] == canonical_pair(b, a)[:2]
    assert canonical_pair(a, b)[2] != canonical_pair(b, a)[2]
    # Two ids naming one sequence give one pair key, in either orientation.
    p1 = Pair("id1", "id2", "MKV", "GGG")
    p2 = Pair("other", "alias", "GGG", "MKV")
    assert p1.key == p2.key


# -- FASTA -------------------------------------------------------------------------------------------------

def test_fasta_plain_gzip_and_crlf_read_the_same(tmp_path):
    text = ">p1 some description\nMKV\nLLA\n>p2\nGGGS\n"
    plain = write(tmp_path / "a.fasta", text)
    zipped = tmp_path / "a.fasta.gz"
    with gzip.open(zipped, "wb") as handle:
        handle.write(text.encode())
    crlf = tmp_path / "crlf.fasta"
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    expected = {"p1": "MKVLLA", "p2": "GGGS"}
    assert read_fasta(plain) == expected
    assert read_fasta(zipped) == expected
    assert read_fasta(crlf) == expected


def test_fasta_gzip_detected_by_content_not_name(tmp_path):
    path = tmp_path / "no_suffix"
    with gzip.open(path, "wb") as handle:
        handle.write(b">p\nMKV\n")
    assert read_fasta(path) == {"p": "MKV"}


def test_fasta_write_read_round_trip(tmp_path):
    sequences = {"a": "MKVLLAGG", "b": "XBZUO"}
    write_fasta(tmp_path / "w.fasta", sequences, width=3)
    assert read_fasta(tmp_path / "w.fasta") == sequences


def test_fasta_lowercase_is_upper_cased(tmp_path):
    path = write(tmp_path / "lower.fasta", ">p\nmkvlla\n")
    assert read_fasta(path) == {"p": "MKVLLA"}


def test_fasta_ambiguous_letters_are_legal(tmp_path):
    path = write(tmp_path / "x.fasta", ">p\nMXBZUO\n")
    assert read_fasta(path) == {"p": "MXBZUO"}


def test_fasta_sequence_before_header(tmp_path):
    path = write(tmp_path / "nohead.fasta", "\nMKV\n>p\nMKV\n")
    with pytest.raises(InputError, match=where(path, 2) + "sequence data before the first '>' header"):
        read_fasta(path)


def test_fasta_empty_record(tmp_path):
    path = write(tmp_path / "empty_rec.fasta", ">p1\nMKV\n>p2\n>p3\nGG\n")
    with pytest.raises(InputError, match=where(path, 3) + "record 'p2' has an empty sequence"):
        read_fasta(path)


def test_fasta_empty_record_at_end(tmp_path):
    path = write(tmp_path / "empty_last.fasta", ">p1\nMKV\n>p2\n")
    with pytest.raises(InputError, match=where(path, 3) + "record 'p2' has an empty sequence"):
        read_fasta(path)


def test_fasta_repeated_id_with_different_sequence(tmp_path):
    path = write(tmp_path / "dup.fasta", ">p1\nMKV\n>p2\nGG\n>p1\nMKA\n")
    with pytest.raises(InputError, match=where(path, 5) + r"id 'p1' appears twice with different sequences "
                                                           r"\(first at line 1\)"):
        read_fasta(path)


def test_fasta_repeated_id_with_same_sequence_is_fine(tmp_path):
    path = write(tmp_path / "dup_ok.fasta", ">p1\nMKV\n>p2\nGG\n>p1\nMK\nV\n")
    assert read_fasta(path) == {"p1": "MKV", "p2": "GG"}


@pytest.mark.parametrize("bad, shown", [("MKJV", "J"), ("MK*", "*"), ("MK1V", "1"), ("MK-V", "-")])
def test_fasta_invalid_characters(tmp_path, bad, shown):
    path = write(tmp_path / "bad.fasta", f">ok\nMKV\n>p\nMKV\n{bad}\n")
    with pytest.raises(InputError, match=where(path, 5) + re.escape(f"invalid residue character(s) {shown!r} "
                                                                     f"in record 'p'")):
        read_fasta(path)


def test_fasta_header_without_id(tmp_path):
    path = write(tmp_path / "noid.fasta", ">p\nMKV\n>  \nGG\n")
    with pytest.raises(InputError, match=where(path, 3) + "header line without an id"):
        read_fasta(path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_fasta_empty_file(tmp_path, text):
    path = write(tmp_path / "empty.fasta", text)
    with pytest.raises(InputError, match=where(path) + r"no FASTA records found"):
        read_fasta(path)


def test_fasta_not_utf8(tmp_path):
    path = tmp_path / "latin1.fasta"
    path.write_bytes(b">p1\nMKV\n>p\xe92\nGG\n")
    with pytest.raises(InputError, match=where(path, 3) + "not valid UTF-8"):
        read_fasta(path)


def test_fasta_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match=where(tmp_path / "nope.fasta") + "file not found"):
        read_fasta(tmp_path / "nope.fasta")
    with pytest.raises(InputError, match="is a directory"):
        read_fasta(tmp_path)


def test_input_error_is_a_user_error(tmp_path):
    assert issubclass(InputError, UserError)


# -- pairs -------------------------------------------------------------------------------------------------

SEQS = {"a": "MKVLL", "b": "GGSSA", "c": "PPWWC", "d": "HHHHK", "a_alias": "MKVLL"}


def test_pairs_without_header(tmp_path):
    path = write(tmp_path / "p.tsv", "a\tb\t1\nc\td\t0.0\n")
    table = read_pairs(path, SEQS)
    assert [(p.id_a, p.id_b, p.label, p.line) for p in table.pairs] == [("a", "b", 1, 1), ("c", "d", 0, 2)]
    assert table.pairs[0].seq_a == "MKVLL" and table.pairs[0].seq_b == "GGSSA"
    assert table.has_labels and not table.has_split
    assert table.columns == ["id_a", "id_b", "label"]


def test_pairs_with_header_and_split_column(tmp_path):
    path = write(tmp_path / "p.tsv", "protein_a\tprotein_b\tsplit\tlabel\na\tb\ttrain\t1\nc\td\tTest\t0\n")
    table = read_pairs(path, SEQS)
    assert [(p.label, p.split, p.line) for p in table.pairs] == [(1, "train", 2), (0, "test", 3)]
    assert table.has_split and table.has_labels


def test_pairs_header_recognised_by_non_numeric_label_field(tmp_path):
    path = write(tmp_path / "p.tsv", "first second interacts\na b 1\n")
    table = read_pairs(path, SEQS)
    assert len(table) == 1 and table.pairs[0].label is None  # no column named 'label'


def test_pairs_without_labels(tmp_path):
    path = write(tmp_path / "p.txt", "a b\nc d\n")
    table = read_pairs(path, SEQS)
    assert [p.label for p in table.pairs] == [None, None] and not table.has_labels
    with pytest.raises(InputError, match=where(path) + "a label column"):
        read_pairs(path, SEQS, require_labels=True)


def test_pairs_bad_split_value(tmp_path):
    path = write(tmp_path / "p.tsv", "id_a\tid_b\tlabel\tsplit\na\tb\t1\ttrain\nc\td\t0\tholdout\n")
    with pytest.raises(InputError, match=where(path, 3) + "split 'holdout' is not one of train, valid, test"):
        read_pairs(path, SEQS)


def test_pairs_unknown_id(tmp_path):
    path = write(tmp_path / "p.tsv", "a\tb\t1\na\tzz\t0\n")
    with pytest.raises(InputError, match=where(path, 2) + "protein id 'zz' is not in the FASTA file"):
        read_pairs(path, SEQS)


@pytest.mark.parametrize("label", ["2", "-1", "0.5", "yes", "nan"])
def test_pairs_labels_other_than_0_1(tmp_path, label):
    path = write(tmp_path / "p.tsv", f"a\tb\t1\nc\td\t{label}\n")
    with pytest.raises(InputError, match=where(path, 2) + re.escape(f"label {label!r} is not 0 or 1")):
        read_pairs(path, SEQS)


def test_pairs_wrong_column_count(tmp_path):
    path = write(tmp_path / "p.tsv", "a\tb\t1\nc\td\n")
    with pytest.raises(InputError, match=where(path, 2) + "expected 3 columns like the first row, found 2"):
        read_pairs(path, SEQS)
    one = write(tmp_path / "one.tsv", "a\n")
    with pytest.raises(InputError, match=where(one, 1) + "expected at least two columns"):
        read_pairs(one, SEQS)


def test_pairs_empty_file(tmp_path):
    path = write(tmp_path / "p.tsv", "# only a comment\n\n")
    with pytest.raises(InputError, match=where(path) + "no pairs found"):
        read_pairs(path, SEQS)


def test_pairs_duplicates_dropped_with_warning(tmp_path, caplog):
    # line 2: same ids reversed; line 3: other ids with identical sequences (a_alias == a); line 4: exact repeat.
    path = write(tmp_path / "p.tsv", "a\tb\t1\nb\ta\t1\nb\ta_alias\t1\na\tb\t1\nc\td\t0\n")
    with caplog.at_level(logging.WARNING, logger="data.pairs"):
        table = read_pairs(path, SEQS)
    assert [(p.id_a, p.id_b) for p in table.pairs] == [("a", "b"), ("c", "d")]
    assert table.duplicates_dropped == 3
    assert any("dropped 3 duplicate pair" in record.getMessage() and str(path) in record.getMessage()
               for record in caplog.records)


def test_pairs_conflicting_duplicate_labels(tmp_path):
    path = write(tmp_path / "p.tsv", "a\tb\t1\nc\td\t0\nb\ta_alias\t0\n")
    with pytest.raises(InputError, match=where(path, 3) + r"pair b/a_alias repeats the sequences of line 1 "
                                                          r"\(a/b\) with a different label"):
        read_pairs(path, SEQS)


def test_pairs_self_pair_allowed(tmp_path, caplog):
    path = write(tmp_path / "p.tsv", "a\ta\t1\na\ta_alias\t1\n")
    with caplog.at_level(logging.WARNING, logger="data.pairs"):
        table = read_pairs(path, SEQS)
    assert len(table) == 1 and table.pairs[0].seq_a == table.pairs[0].seq_b
    assert table.duplicates_dropped == 1


def test_pairs_write_read_round_trip(tmp_path):
    pairs = [Pair("a", "b", SEQS["a"], SEQS["b"], 1, "train"), Pair("c", "d", SEQS["c"], SEQS["d"], 0, "test")]
    write_pairs(tmp_path / "w.tsv", pairs, with_split=True)
    back = read_pairs(tmp_path / "w.tsv", SEQS)
    assert [(p.id_a, p.id_b, p.label, p.split) for p in back.pairs] == [("a", "b", 1, "train"), ("c", "d", 0, "test")]


def test_pairs_gzip_and_crlf(tmp_path):
    text = "id_a\tid_b\tlabel\r\na\tb\t1\r\nc\td\t0\r\n"
    path = tmp_path / "p.tsv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(text.encode())
    assert [(p.id_a, p.label) for p in read_pairs(path, SEQS).pairs] == [("a", 1), ("c", 0)]


# -- splits ------------------------------------------------------------------------------------------------

def _random_pair_set(rng: np.random.Generator, n_proteins: int = 60, n_pairs: int = 240,
                     n_aliases: int = 10) -> list[Pair]:
    """Pairs over random proteins, where the first `n_aliases` proteins also appear under a second id."""
    sequences = [random_sequence(rng, int(rng.integers(20, 40))) for _ in range(n_proteins)]
    ids = [f"p{i}" for i in range(n_proteins)]
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    while len(pairs) < n_pairs:
        i, j = (int(x) for x in rng.integers(0, n_proteins, size=2))
        pair = Pair(ids[i] if i >= n_aliases or rng.random() < 0.5 else f"alias{i}",
                    ids[j], sequences[i], sequences[j], int(rng.random() < 0.3))
        if pair.key in seen:
            continue
        seen.add(pair.key)
        pairs.append(pair)
    return pairs


def test_protein_split_is_protein_disjoint_and_counts_straddlers(rng):
    pairs = _random_pair_set(rng)
    result = assign_splits(pairs, by="protein", valid_frac=0.15, test_frac=0.2, seed=3)
    assert len(result.pairs) + result.dropped == len(pairs)
    assert result.dropped > 0  # a dense random graph must have pairs across parts
    assert result.stats["dropped_straddling"] == result.dropped
    assert result.stats["kept"] == len(result.pairs)
    members = {part: {sequence_key(s) for p in result.pairs if p.split == part for s in (p.seq_a, p.seq_b)}
               for part in ("train", "valid", "test")}
    assert members["train"] and members["test"]
    assert not members["train"] & members["test"]
    assert not members["train"] & members["valid"]
    assert not members["valid"] & members["test"]
    # Every sequence lives in one part, whichever id names it (aliases share a sequence).
    part_of: dict[str, set[str]] = {}
    for p in result.pairs:
        for s in (p.seq_a, p.seq_b):
            part_of.setdefault(sequence_key(s), set()).add(p.split)
    assert all(len(parts) == 1 for parts in part_of.values())
    # The straddler count equals the pairs whose two proteins were given different parts.
    assert sum(result.stats[part]["pairs"] for part in ("train", "valid", "test")) == len(result.pairs)


def test_protein_split_keeps_aliases_together(rng):
    shared = random_sequence(rng, 30)
    others = [random_sequence(rng, 30) for _ in range(40)]
    pairs = [Pair("x", f"o{i}", shared, others[i], i % 2) for i in range(5)]
    pairs += [Pair("x_alias", f"o{i}", shared, others[i], i % 2) for i in range(5, 10)]
    pairs += [Pair(f"o{i}", f"o{j}", others[i], others[j], 0) for i in range(40) for j in range(i + 1, 40)
              if (i * 7 + j) % 9 == 0]
    both_ids_kept = 0
    for seed in range(8):
        result = assign_splits(pairs, by="protein", valid_frac=0.1, test_frac=0.3, seed=seed)
        parts = {p.split for p in result.pairs if shared in (p.seq_a, p.seq_b)}
        assert len(parts) <= 1, f"seed {seed}: one sequence under two ids landed in parts {parts}"
        both_ids_kept += {p.id_a for p in result.pairs if p.seq_a == shared} == {"x", "x_alias"}
    assert both_ids_kept  # in some seed, pairs under both ids survived (and then shared one part)


def test_protein_split_is_deterministic_per_seed(rng):
    pairs = _random_pair_set(rng, n_pairs=120)
    first = assign_splits(pairs, by="protein", seed=7)
    again = assign_splits(pairs, by="protein", seed=7)
    assert [p.split for p in first.pairs] == [p.split for p in again.pairs]


def test_random_split_keeps_every_pair(rng):
    pairs = _random_pair_set(rng, n_pairs=100)
    result = assign_splits(pairs, by="random", valid_frac=0.1, test_frac=0.2, seed=0)
    assert result.dropped == 0 and len(result.pairs) == 100
    assert sum(p.split == "test" for p in result.pairs) == 20
    assert sum(p.split == "valid" for p in result.pairs) == 10


def test_split_rejects_bad_fractions_and_method(rng):
    pairs = _random_pair_set(rng, n_pairs=50)
    with pytest.raises(UserError, match="valid \\+ test < 1"):
        assign_splits(pairs, valid_frac=0.5, test_frac=0.5)
    with pytest.raises(UserError, match="unknown split method 'cluster'"):
        assign_splits(pairs, by="cluster")


def test_conflicting_labels_are_dropped_only_on_request(tmp_path):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(">a\nMKTAYIAK\n>b\nGLLVVKQE\n>b2\nGLLVVKQE\n>c\nMSTNPKPQ\n")
    pairs = tmp_path / "p.tsv"
    # a/b positive; b2/a (same sequences, other id and order) negative; a duplicate a/c; c/b kept
    pairs.write_text("a\tb\t1\na\tc\t0\nb2\ta\t0\nc\ta\t0\nc\tb\t1\na\tb\t1\n")
    sequences = read_fasta(fasta)
    with pytest.raises(InputError, match=r"p\.tsv:3: pair b2/a repeats the sequences of line 1"):
        read_pairs(pairs, sequences)
    table = read_pairs(pairs, sequences, drop_conflicts=True)
    assert [(p.id_a, p.id_b) for p in table.pairs] == [("a", "c"), ("c", "b")]
    assert table.conflicts_dropped == 3 and table.duplicates_dropped == 1


def test_atomic_path_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    from data.atomic import atomic_path, write_text_atomic

    target = tmp_path / "out.tsv"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".tsv" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]
    with atomic_path(target) as tmp:
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]
