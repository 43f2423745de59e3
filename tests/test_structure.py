"""Structure reading, alignment to sequences and the structure-teacher cache, on hand-written fixture files."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import gemmi
import numpy as np
import pytest
from click.testing import CliRunner

from data.align import align_to_sequence, observed_cells, project_map
from data.errors import InputError, UserError
from data.fasta import read_fasta, write_fasta
from data.structure import load_complex, read_chains, read_manifest, read_side, residue_letter
from teacher_cache import TeacherCache
from teacher_cache.teachers.structure import (StructureCacheConfig, build_structure_cache, composition_embedding,
                                             observed_from_attention)
from tests.helpers import random_sequence

# Chain A: ALA 1, GLY 2, SER 3 without CB, VAL 4 with altlocs (A first; B's CB far away), LEU 4A (insertion
# code), MSE 5 as HETATM, residues 6-7 missing (gap), LYS 8. Chain B: ASP GLY PHE TRP ARG GLU. Trailing HETATMs:
# a calcium ion named CA with an atom CA (not a residue) and a water. Columns 73-80 carry a legacy segment id.
PDB_TEXT = """\
ATOM      1  N   ALA A   1      -2.500   1.000   0.000  1.00 20.00           N
ATOM      2  CA  ALA A   1      -1.500   0.000   0.000  1.00 20.00           C
ATOM      3  C   ALA A   1      -2.000  -1.000   1.000  1.00 20.00           C
ATOM      4  CB  ALA A   1       0.000   0.000   0.000  1.00 20.00           C
ATOM      5  N   GLY A   2      -1.000   1.000  10.000  1.00 20.00           N
ATOM      6  CA  GLY A   2       0.000   0.000  10.000  1.00 20.00           C
ATOM      7  N   SER A   3      -1.000   1.000  20.000  1.00 20.00           N
ATOM      8  CA  SER A   3       0.000   0.000  20.000  1.00 20.00           C
ATOM      9  C   SER A   3      -1.000  -1.000  20.000  1.00 20.00           C
ATOM     10  CA AVAL A   4      -1.500   0.000  30.000  0.60 20.00           C
ATOM     11  CA BVAL A   4      -1.600   0.000  30.000  0.40 20.00           C
ATOM     12  CB AVAL A   4       0.000   0.000  30.000  0.60 20.00           C
ATOM     13  CB BVAL A   4     100.000 100.000 100.000  0.40 20.00           C
ATOM     14  CA  LEU A   4A     -1.500   0.000  40.000  1.00 20.00           C
ATOM     15  CB  LEU A   4A      0.000   0.000  40.000  1.00 20.00           C
HETATM   16  CA  MSE A   5      -1.500   0.000  50.000  1.00 20.00           C
HETATM   17  CB  MSE A   5       0.000   0.000  50.000  1.00 20.00           C
HETATM   18 SE   MSE A   5       0.000   1.000  52.000  1.00 20.00          SE
ATOM     19  CA  LYS A   8      -1.500   0.000  80.000  1.00 20.00      XTAL C
ATOM     20  CB  LYS A   8       0.000   0.000  80.000  1.00 20.00      XTAL C
TER
ATOM     21  CA  ASP B   1       6.500   0.000   0.000  1.00 20.00           C
ATOM     22  CB  ASP B   1       5.000   0.000   0.000  1.00 20.00           C
ATOM     23  CA  GLY B   2       5.000   0.000  30.000  1.00 20.00           C
ATOM     24  CA  PHE B   3       7.500   0.000  50.000  1.00 20.00           C
ATOM     25  CB  PHE B   3       6.000   0.000  50.000  1.00 20.00           C
ATOM     26  CA  TRP B   4       9.400   0.000  20.000  1.00 20.00           C
ATOM     27  CB  TRP B   4       7.900   0.000  20.000  1.00 20.00           C
ATOM     28  CA  ARG B   5       8.500   0.000  80.000  1.00 20.00           C
ATOM     29  CB  ARG B   5       7.000   0.000  80.000  1.00 20.00           C
ATOM     30  CA  GLU B   6       0.000   9.500   0.000  1.00 20.00           C
ATOM     31  CB  GLU B   6       0.000   8.000   0.000  1.00 20.00           C
TER
HETATM   32 CA    CA A 101       2.500   0.000   0.000  1.00 20.00          CA
HETATM   33  O   HOH A 201       2.500   0.000  10.000  1.00 20.00           O
END
"""
SEQ_A, SEQ_B = "AGSVLMK", "DGFWRE"
# (row of A, column of B) pairs closer than 8 A; B6 sits exactly 8.0 A from A1 and must not count.
CONTACTS = {(0, 0), (2, 3), (3, 1), (5, 2), (6, 4)}


def expected_map(rows: int = 7, cols: int = 6, row_of=lambda i: i, col_of=lambda j: j) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=bool)
    for i, j in CONTACTS:
        out[row_of(i), col_of(j)] = True
    return out


@pytest.fixture
def pdb_file(tmp_path: Path) -> Path:
    path = tmp_path / "complex.pdb"
    path.write_text(PDB_TEXT)
    return path


@pytest.fixture
def cif_file(tmp_path: Path, pdb_file: Path) -> Path:
    """The same complex as mmCIF, written by gemmi from the PDB file."""
    structure = gemmi.read_pdb(str(pdb_file), max_line_length=72)
    structure.setup_entities()
    path = tmp_path / "complex.cif"
    structure.make_mmcif_document().write_file(str(path))
    return path


def write_manifest(path: Path, rows: list[tuple[str, ...]], chains: bool = True) -> Path:
    header = ["id_a", "id_b", "structure_a", "structure_b"] + (["chains_a", "chains_b"] if chains else [])
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(row) + "\n" for row in rows))
    return path


# -- reading ----------------------------------------------------------------------------------------------
def test_pdb_residues_sequence_and_contacts(pdb_file: Path):
    chains = read_chains(pdb_file)
    assert list(chains) == ["A", "B"]
    assert chains["A"].sequence == SEQ_A  # ion and water left out, MSE -> M, altloc counted once
    assert chains["A"].numbers == ("1", "2", "3", "4", "4A", "5", "8")
    assert chains["B"].sequence == SEQ_B
    # glycine and the CB-less serine use CA; the altloc VAL uses its first CB
    np.testing.assert_allclose(chains["A"].coords[1], [0, 0, 10])
    np.testing.assert_allclose(chains["A"].coords[2], [0, 0, 20])
    np.testing.assert_allclose(chains["A"].coords[3], [0, 0, 30])
    np.testing.assert_allclose(chains["A"].coords[6], [0, 0, 80])  # CB, not CA (-1.5, 0, 80)
    complex_ = load_complex(read_manifest(write_manifest(pdb_file.parent / "m.tsv", [
        ("pa", "pb", pdb_file.name, pdb_file.name, "A", "B")]))[0])
    np.testing.assert_array_equal(complex_.contacts(), expected_map())
    assert complex_.observed.all()
    assert complex_.labels_a[4] == "A:4A"


def test_pdb_and_mmcif_and_gzip_give_the_same_map(tmp_path: Path, pdb_file: Path, cif_file: Path):
    gz_file = tmp_path / "complex.pdb.gz"
    with open(pdb_file, "rb") as source, gzip.open(gz_file, "wb") as target:
        shutil.copyfileobj(source, target)
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", name, name, "A", "B")
                                                   for name in ("complex.pdb", "complex.cif", "complex.pdb.gz")])
    maps = [load_complex(row) for row in read_manifest(manifest)]
    for complex_ in maps:
        assert (complex_.seq_a, complex_.seq_b) == (SEQ_A, SEQ_B)
        np.testing.assert_array_equal(complex_.contacts(), expected_map())
        np.testing.assert_allclose(complex_.distance, maps[0].distance, atol=1e-3)


def test_side_of_several_chains_is_concatenated_in_order(pdb_file: Path):
    side = read_side(pdb_file, ["B", "A"])
    assert side.sequence == SEQ_B + SEQ_A
    assert side.labels[0] == "B:1" and side.labels[len(SEQ_B)] == "A:1"
    assert read_side(pdb_file).sequence == SEQ_A + SEQ_B  # all chains, file order


def test_residue_letters():
    assert [residue_letter(n) for n in ("MSE", "LLP", "5HP", "SEP", "GLX", "UNK", "ALA")] == list("MKESXXA")


# -- alignment --------------------------------------------------------------------------------------------
def test_alignment_with_missing_and_mutated_residues(rng):
    sequence = random_sequence(rng, 80)
    kept = [i for i in range(80) if not (i < 3 or 30 <= i < 38 or i >= 77)]  # N- and C-termini, one loop
    structure = list(sequence[i] for i in kept)
    mutated = {10: "W" if sequence[10] != "W" else "C", 50: "P" if sequence[50] != "P" else "G"}
    for position, letter in mutated.items():
        structure[kept.index(position)] = letter
    alignment = align_to_sequence("".join(structure), sequence)
    expected = np.full(80, -1)
    expected[kept] = np.arange(len(kept))
    np.testing.assert_array_equal(alignment.index, expected)
    assert alignment.identical == len(kept) - 2
    assert alignment.coverage == pytest.approx(len(kept) / 80)


def test_identical_sequences_map_one_to_one():
    alignment = align_to_sequence("MKTAYIAK", "MKTAYIAK")
    np.testing.assert_array_equal(alignment.index, np.arange(8))
    assert alignment.identity == 1.0


def test_projection_masks_unaligned_cells_without_shifting():
    rows = align_to_sequence("ACDEF", "ACDGGGEF")  # GGG unaligned
    cols = align_to_sequence("KLM", "KLM")
    values = np.arange(15, dtype=np.float32).reshape(5, 3)
    projected = project_map(values, rows, cols, fill=-1.0)
    np.testing.assert_array_equal(projected[[0, 1, 2, 6, 7]], values)
    assert (projected[3:6] == -1).all()
    assert observed_cells(rows, cols).sum() == 15


def test_fasta_with_gap_and_mutation_masks_the_gap(tmp_path: Path, pdb_file: Path):
    sequences = {"pa": "AGSVLMQQK", "pb": "DGYWRE"}  # QQ: residues 6-7 not modelled; F3Y mutated
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B")])
    complex_ = load_complex(read_manifest(manifest)[0], sequences)
    expected = expected_map(9, 6, row_of=lambda i: i if i < 6 else i + 2)
    np.testing.assert_array_equal(complex_.contacts(), expected)
    observed_rows = complex_.observed.all(axis=1)
    np.testing.assert_array_equal(observed_rows, [True] * 6 + [False, False, True])
    assert np.isinf(complex_.distance[6:8]).all()


# -- manifests and errors ---------------------------------------------------------------------------------
def test_manifest_missing_file_names_the_row(tmp_path: Path, pdb_file: Path):
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B"),
                                                   ("pc", "pd", "complex.pdb", "nothere.pdb", "A", "B")])
    with pytest.raises(InputError, match=r"m\.tsv:3: structure_b file .*nothere\.pdb not found"):
        read_manifest(manifest)


def test_manifest_missing_chain_names_the_row(tmp_path: Path, pdb_file: Path):
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B"),
                                                   ("pc", "pd", "complex.pdb", "complex.pdb", "A", "Q")])
    config = StructureCacheConfig(structures=str(manifest), out=str(tmp_path / "c.h5"))
    with pytest.raises(InputError, match=r"m\.tsv:3: complex pc/pd: .*chain\(s\) Q not found"):
        build_structure_cache(config)
    run_together = write_manifest(tmp_path / "n.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "AB", "B")])
    with pytest.raises(InputError, match=r"n\.tsv:2: .*separate several chains with commas"):
        load_complex(read_manifest(run_together)[0])
    assert not (tmp_path / "c.h5").exists()
    assert not list(tmp_path.glob("c.h5.partial*"))


def test_wrong_sequence_fails_naming_the_row(tmp_path: Path, pdb_file: Path, rng):
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B")])
    with pytest.raises(InputError, match=r"m\.tsv:2: .*'pa'.*wrong chain or wrong id"):
        load_complex(read_manifest(manifest)[0], {"pa": "WWWWWWWWWWWWWWWWHHHH", "pb": SEQ_B})
    with pytest.raises(InputError, match=r"m\.tsv:2: .*id 'pb' is not in the FASTA"):
        load_complex(read_manifest(manifest)[0], {"pa": SEQ_A})


def test_manifest_needs_its_header(tmp_path: Path):
    path = tmp_path / "m.tsv"
    path.write_text("pa\tpb\tx.pdb\tx.pdb\n")
    with pytest.raises(InputError, match=r"m\.tsv:1: manifest header"):
        read_manifest(path)


def test_unreadable_structure_is_an_input_error(tmp_path: Path):
    path = tmp_path / "broken.cif"
    path.write_text("data_x\nloop_\n_atom_site.id\n")
    with pytest.raises(UserError, match="broken.cif"):
        read_chains(path)


# -- the structure-teacher cache --------------------------------------------------------------------------
def test_structure_cache_round_trip(tmp_path: Path, pdb_file: Path, cif_file: Path):
    sequences = {"pa": "AGSVLMQQK", "pb": "DGYWRE"}
    write_fasta(tmp_path / "seqs.fasta", sequences)
    # the same pair twice (PDB and mmCIF): stored once
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B"),
                                                   ("pb", "pa", "complex.cif", "complex.cif", "B", "A")])
    report = build_structure_cache(StructureCacheConfig(structures=str(manifest), out=str(tmp_path / "s.h5"),
                                                        fasta=str(tmp_path / "seqs.fasta")))
    assert (report.complexes, report.pairs, report.merged_duplicates, report.contacts) == (2, 1, 1, 5)
    expected = expected_map(9, 6, row_of=lambda i: i if i < 6 else i + 2)
    with TeacherCache.open(tmp_path / "s.h5") as cache:
        maps = cache.pair(sequences["pa"], sequences["pb"])
        np.testing.assert_array_equal(maps.contact, expected.astype(np.float32))
        np.testing.assert_array_equal(cache.pair(sequences["pb"], sequences["pa"]).contact, expected.T)
        observed = observed_from_attention(maps.attention)
        np.testing.assert_array_equal(observed.all(axis=1), [True] * 6 + [False, False, True])
        assert ((maps.attention > 0.5) == (maps.contact > 0.5))[observed].all()
        assert cache.teacher == "structure" and not cache.random_weights
        assert cache.settings["cutoff_angstrom"] == 8.0
        assert cache.settings["gemmi_version"] == gemmi.__version__
        embedding = cache.protein(sequences["pa"]).embedding
        np.testing.assert_allclose(embedding, composition_embedding(sequences["pa"]), atol=1e-6)
        assert embedding.sum() == pytest.approx(1.0)


def test_negative_pairs_get_all_zero_maps(tmp_path: Path, pdb_file: Path):
    sequences = {"pa": SEQ_A, "pb": SEQ_B, "pc": "MKTAYIAKQRQISFVK"}
    write_fasta(tmp_path / "seqs.fasta", sequences)
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B")])
    (tmp_path / "neg.tsv").write_text("id_a\tid_b\tlabel\npa\tpb\t1\npc\tpa\t0\n")
    report = build_structure_cache(StructureCacheConfig(structures=str(manifest), out=str(tmp_path / "s.h5"),
                                                        fasta=str(tmp_path / "seqs.fasta"),
                                                        negatives=str(tmp_path / "neg.tsv")))
    assert (report.pairs, report.negatives, report.proteins) == (2, 1, 3)
    with TeacherCache.open(tmp_path / "s.h5") as cache:
        maps = cache.pair(sequences["pa"], sequences["pc"])
        assert maps.contact.shape == (7, 16) and not maps.contact.any() and not maps.attention.any()
        assert cache.pair(SEQ_A, SEQ_B).contact.sum() == 5
    (tmp_path / "bad.tsv").write_text("id_a\tid_b\tlabel\npb\tpa\t0\n")
    with pytest.raises(InputError, match=r"bad\.tsv:2: negative pair pb/pa is a complex of the manifest"):
        build_structure_cache(StructureCacheConfig(structures=str(manifest), out=str(tmp_path / "t.h5"),
                                                   fasta=str(tmp_path / "seqs.fasta"),
                                                   negatives=str(tmp_path / "bad.tsv")))


def test_structure_cache_cutoff_and_fasta_out(tmp_path: Path, pdb_file: Path):
    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B")])
    build_structure_cache(StructureCacheConfig(structures=str(manifest), out=str(tmp_path / "s.h5"),
                                               fasta_out=str(tmp_path / "own.fasta"), cutoff=8.01))
    assert read_fasta(tmp_path / "own.fasta") == {"pa": SEQ_A, "pb": SEQ_B}
    with TeacherCache.open(tmp_path / "s.h5") as cache:
        contact = cache.pair(SEQ_A, SEQ_B).contact
    expected = expected_map()
    expected[0, 5] = True  # B6 at exactly 8.0 A counts once the cutoff passes 8
    np.testing.assert_array_equal(contact, expected)


def test_structure_cache_cli(tmp_path: Path, pdb_file: Path):
    from cli import cli

    manifest = write_manifest(tmp_path / "m.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "B")])
    runner = CliRunner()
    result = runner.invoke(cli, ["structure-cache", "--structures", str(manifest), "--out", str(tmp_path / "s.h5"),
                                 "--fasta-out", str(tmp_path / "own.fasta")])
    assert result.exit_code == 0, result.output
    info = runner.invoke(cli, ["cache", "info", str(tmp_path / "s.h5")])
    assert info.exit_code == 0, info.output
    bad = write_manifest(tmp_path / "bad.tsv", [("pa", "pb", "complex.pdb", "complex.pdb", "A", "Z")])
    result = runner.invoke(cli, ["structure-cache", "--structures", str(bad), "--out", str(tmp_path / "t.h5")])
    assert result.exit_code == 2
    assert "bad.tsv:2" in result.output and "Z" in result.output
    assert read_fasta(tmp_path / "own.fasta") == {"pa": SEQ_A, "pb": SEQ_B}


def test_structure_modules_do_not_import_esm():
    import subprocess
    import sys

    code = ("import sys, teacher_cache.teachers.structure, student.evaluation.evaluate_maps, data.structure; "
            "print('esm' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
