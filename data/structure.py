"""Protein chains from PDB and mmCIF files, and the true inter-chain contacts of complexes listed in a manifest.

Reading uses gemmi (https://gemmi.readthedocs.io): a fast C++ parser maintained by CCP4 / Global Phasing that reads
PDB and mmCIF, plain or gzipped, keeps alternate locations and insertion codes as they are in the file, and ships
the PDB chemical-component table we use to map modified residues to their parents. PDB files are read with
columns 73-80 ignored (segment id, element, charge): legacy files put serial numbers there, which gemmi would
otherwise reject as a charge, and none of those columns matters here.

Residue definition (the one of the DB5.5 data set's README, re-implemented; docs/results.md, "DB5.5"):
- only the first model; atoms are grouped by (chain, sequence number, insertion code) in file order, and
  consecutive groups with the same number (microheterogeneity) count once, under the first one's name;
- alternate locations: the first record of each atom name wins;
- a group is a residue when it has a CA atom and is an ATOM record, or a HETATM modified amino acid (gemmi's
  table, or `PARENT`) in a chain that also has ATOM records; ligands, sugars, ions and caps are not residues;
- letters: the 20 standard residues; a modified residue becomes its parent (MSE -> M); anything else is X;
- one coordinate per residue: C-beta, or C-alpha for glycine and for residues without a C-beta.
A contact is a pair of residues of the two sides whose coordinates are closer than the cutoff (8 A by default).

A side of a complex may be several chains, concatenated in the order given. Structure residues are aligned to
the sequences the user names (`data.align`), and cells without a structure residue are masked, never shifted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import gemmi
import numpy as np

from data.align import Alignment, align_to_sequence, observed_cells, project_map
from data.errors import InputError, UserError
from data.textio import read_lines

STANDARD = {"ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
            "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
            "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V"}
# Modified residues absent from (or not marked as amino acids in) gemmi's table, with their parents.
PARENT = {"MSE": "M", "LLP": "K", "5HP": "E", "DDE": "H", "P1L": "C", "ASA": "D"}
DEFAULT_CUTOFF = 8.0
MANIFEST_COLUMNS = ("id_a", "id_b", "structure_a", "structure_b")
ALL_CHAINS = ("", "-", "*")


def residue_letter(name: str) -> str:
    """One-letter code of a residue name: standard, parent of a modified residue, or X."""
    name = name.upper()
    if name in STANDARD:
        return STANDARD[name]
    if name in PARENT:
        return PARENT[name]
    info = gemmi.find_tabulated_residue(name)
    if info is not None and info.is_amino_acid():
        code = info.one_letter_code.upper()  # lower case in gemmi's table marks a modified residue
        if code in STANDARD.values():
            return code
    return "X"


def _is_modified_amino_acid(name: str) -> bool:
    if name in STANDARD:
        return False
    if name in PARENT:
        return True
    info = gemmi.find_tabulated_residue(name)
    return info is not None and info.is_amino_acid()


@dataclass(frozen=True)
class ChainResidues:
    chain: str
    sequence: str
    coords: np.ndarray  # float64 (L, 3): C-beta, or C-alpha for glycine / a missing C-beta
    numbers: tuple[str, ...]  # author residue number with insertion code, e.g. "52", "52A"


@dataclass(frozen=True)
class StructureSide:
    """One side of a complex: the residues of its chains, concatenated in the order given."""

    path: str
    chains: tuple[str, ...]
    sequence: str
    coords: np.ndarray  # float64 (L, 3)
    labels: tuple[str, ...]  # "chain:number", e.g. "A:52A"


def _read_gemmi(path: Path) -> gemmi.Structure:
    name = path.name.lower().removesuffix(".gz")
    is_cif = name.endswith((".cif", ".mmcif"))
    if not name.endswith((".cif", ".mmcif", ".pdb", ".ent")):
        first = next((line.strip() for _, line in read_lines(path) if line.strip()), "")
        is_cif = first.startswith("data_")
    if is_cif:
        return gemmi.read_structure(str(path), merge_chain_parts=True, format=gemmi.CoorFormat.Mmcif)
    structure = gemmi.read_pdb(str(path), max_line_length=72)
    structure.merge_chain_parts()
    return structure


def _chain_residues(chain: gemmi.Chain) -> ChainResidues:
    has_atom_records = any(residue.het_flag == "A" for residue in chain)
    groups: list[list[gemmi.Residue]] = []
    for residue in chain:
        if groups and groups[-1][0].seqid == residue.seqid:
            groups[-1].append(residue)
        else:
            groups.append([residue])
    letters, coords, numbers = [], [], []
    for group in groups:
        first = group[0]
        atoms: dict[str, gemmi.Position] = {}
        for residue in group:
            for atom in residue:
                atoms.setdefault(atom.name, atom.pos)  # first record of each atom name wins (altlocs)
        if "CA" not in atoms:
            continue
        if first.het_flag != "A" and not (has_atom_records and _is_modified_amino_acid(first.name)):
            continue
        letter = residue_letter(first.name)
        position = atoms["CA"] if letter == "G" or "CB" not in atoms else atoms["CB"]
        letters.append(letter)
        coords.append((position.x, position.y, position.z))
        numbers.append(f"{first.seqid.num}{first.seqid.icode.strip()}")
    return ChainResidues(chain.name, "".join(letters), np.array(coords, dtype=np.float64).reshape(-1, 3),
                         tuple(numbers))


def read_chains(path: str | Path) -> dict[str, ChainResidues]:
    """{chain id: residues} of the first model, in file order; chains without protein residues are left out."""
    path = Path(path)
    if not path.exists():
        raise InputError("structure file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected a PDB or mmCIF file", path)
    try:
        structure = _read_gemmi(path)
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError(f"cannot read as PDB or mmCIF ({exc})", path) from None
    if len(structure) == 0:
        raise InputError("no models (no ATOM/HETATM records?)", path)
    chains: dict[str, ChainResidues] = {}
    for chain in structure[0]:
        residues = _chain_residues(chain)
        if residues.sequence and chain.name not in chains:
            chains[chain.name] = residues
    return chains


def side_from_chains(path: str | Path, chains: dict[str, ChainResidues],
                     names: Sequence[str] | None = None) -> StructureSide:
    """Concatenate the named chains (all protein chains in file order when `names` is None)."""
    names = tuple(chains) if not names else tuple(names)
    missing = [name for name in names if name not in chains]
    if missing:
        hint = ""
        if any(len(name) > 1 and all(c in chains for c in name) for name in missing):
            hint = "; separate several chains with commas (A,B)"
        raise InputError(f"chain(s) {', '.join(missing)} not found or without protein residues "
                         f"(chains with residues: {', '.join(chains) or 'none'}){hint}", path)
    if not names:
        raise InputError("no protein chains", path)
    parts = [chains[name] for name in names]
    labels = tuple(f"{part.chain}:{number}" for part in parts for number in part.numbers)
    return StructureSide(str(path), names, "".join(p.sequence for p in parts),
                         np.concatenate([p.coords for p in parts]), labels)


def read_side(path: str | Path, chains: Sequence[str] | None = None) -> StructureSide:
    """Residues of `chains` (all protein chains when None) of one structure file."""
    return side_from_chains(path, read_chains(path), chains)


def distance_map(coords_a: np.ndarray, coords_b: np.ndarray) -> np.ndarray:
    """(La, Lb) Euclidean distances between the residue coordinates of two sides."""
    diff = coords_a[:, None, :] - coords_b[None, :, :]  # (La, Lb, 3)
    return np.sqrt((diff ** 2).sum(axis=-1))


def contact_map(coords_a: np.ndarray, coords_b: np.ndarray, cutoff: float = DEFAULT_CUTOFF) -> np.ndarray:
    """Boolean (La, Lb): residue pairs closer than `cutoff` angstrom."""
    return distance_map(coords_a, coords_b) < cutoff


# -- manifests of complexes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestRow:
    id_a: str
    id_b: str
    structure_a: Path
    structure_b: Path
    chains_a: tuple[str, ...] | None  # None: every protein chain of the file
    chains_b: tuple[str, ...] | None
    path: str  # the manifest file
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def manifest_inputs(rows: list[ManifestRow]) -> dict[str, Path]:
    """The structure files of a manifest, by where each is named (inputs that no output may replace)."""
    return {f"{row.where} {side}": path for row in rows
            for side, path in (("structure_a", row.structure_a), ("structure_b", row.structure_b))}


def _parse_chains(text: str) -> tuple[str, ...] | None:
    if text.strip() in ALL_CHAINS:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Rows of a complexes manifest: header `id_a id_b structure_a structure_b [chains_a chains_b]`.

    Tab-separated (whitespace when there is no tab). Structure paths are resolved against the manifest's folder;
    chains are comma-separated chain ids, '-' or empty for every protein chain. Missing files fail here, naming
    the row.
    """
    path = Path(path)
    rows: list[ManifestRow] = []
    columns: list[str] | None = None
    for number, line in read_lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if columns is None:
            columns = [f.lower() for f in fields]
            missing = [c for c in MANIFEST_COLUMNS if c not in columns]
            if missing:
                raise InputError(f"manifest header must name the columns {' '.join(MANIFEST_COLUMNS)} "
                                 f"[chains_a chains_b]; missing {', '.join(missing)}", path, number)
            continue
        if len(fields) < len(columns):
            fields += [""] * (len(columns) - len(fields))
        values = dict(zip(columns, fields))
        for name in MANIFEST_COLUMNS:
            if not values[name]:
                raise InputError(f"empty {name}", path, number)
        files = {}
        for side in ("a", "b"):
            file = path.parent / values[f"structure_{side}"]
            if not file.is_file():
                raise InputError(f"structure_{side} file {file} not found", path, number)
            files[side] = file
        rows.append(ManifestRow(values["id_a"], values["id_b"], files["a"], files["b"],
                                _parse_chains(values.get("chains_a", "")), _parse_chains(values.get("chains_b", "")),
                                str(path), number))
    if not rows:
        raise InputError("manifest lists no complexes", path)
    return rows


@dataclass
class ComplexContacts:
    """True inter-chain geometry of one complex on the sequences (La, Lb) the maps are indexed by."""

    row: ManifestRow
    seq_a: str
    seq_b: str
    distance: np.ndarray  # float32 (La, Lb) angstrom; inf where a residue has no structure coordinates
    align_a: Alignment
    align_b: Alignment
    labels_a: tuple[str, ...] = field(default=())  # per sequence position: "chain:number", "" when unaligned
    labels_b: tuple[str, ...] = field(default=())

    @property
    def observed(self) -> np.ndarray:
        return observed_cells(self.align_a, self.align_b)

    def contacts(self, cutoff: float = DEFAULT_CUTOFF) -> np.ndarray:
        """Boolean (La, Lb); unobserved cells are False."""
        return self.distance < cutoff


class StructureLibrary:
    """Parses each structure file once (both sides of a complex are often the same file)."""

    def __init__(self) -> None:
        self._chains: dict[Path, dict[str, ChainResidues]] = {}

    def side(self, path: Path, chains: Sequence[str] | None) -> StructureSide:
        key = Path(path).resolve()
        if key not in self._chains:
            self._chains[key] = read_chains(path)
        return side_from_chains(path, self._chains[key], chains)


def _labels(side: StructureSide, alignment: Alignment) -> tuple[str, ...]:
    return tuple(side.labels[i] if i >= 0 else "" for i in alignment.index)


def load_complex(row: ManifestRow, sequences: dict[str, str] | None = None, min_identity: float = 0.5,
                 library: StructureLibrary | None = None) -> ComplexContacts:
    """Read both sides of a manifest row and put their distances on the given sequences.

    sequences: {id: sequence}; without it, each side's own structure sequence is used. Structure residues are
    aligned to the sequence; an alignment below `min_identity` (fraction of aligned letters that agree) fails
    as the wrong chain or id. Every error names the manifest row.
    """
    library = library or StructureLibrary()
    try:
        side_a = library.side(row.structure_a, row.chains_a)
        side_b = library.side(row.structure_b, row.chains_b)
        aligned = []
        for name, side in ((row.id_a, side_a), (row.id_b, side_b)):
            if sequences is None:
                target = side.sequence
            elif name not in sequences:
                raise UserError(f"id '{name}' is not in the FASTA file")
            else:
                target = sequences[name]
            alignment = align_to_sequence(side.sequence, target)
            if alignment.aligned == 0 or alignment.identity < min_identity:
                raise UserError(
                    f"the residues of {side.path} chain(s) {','.join(side.chains)} match only "
                    f"{alignment.identity:.0%} of the aligned positions of '{name}' (minimum {min_identity:.0%}): "
                    "wrong chain or wrong id?")
            aligned.append((target, alignment))
    except UserError as exc:
        raise InputError(f"complex {row.id_a}/{row.id_b}: {exc}", row.path, row.line) from None
    (seq_a, align_a), (seq_b, align_b) = aligned
    distance = project_map(distance_map(side_a.coords, side_b.coords).astype(np.float32), align_a, align_b,
                           fill=np.inf)
    return ComplexContacts(row, seq_a, seq_b, distance, align_a, align_b, _labels(side_a, align_a),
                           _labels(side_b, align_b))


def iter_complexes(rows: Sequence[ManifestRow], sequences: dict[str, str] | None = None,
                   min_identity: float = 0.5) -> Iterator[ComplexContacts]:
    library = StructureLibrary()
    for row in rows:
        yield load_complex(row, sequences, min_identity, library)
