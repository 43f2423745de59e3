"""What every benchmark shares: where and how it ran (provenance), timing helpers, and writing its result file.

A result file is `{"provenance": {...}, <the benchmark's own fields>}`, written atomically by `write_result`. The
provenance block has one shape for every benchmark:

    format             "benchmarks.common/1"
    benchmark          the module that ran, e.g. "benchmarks.cache_write"
    command            its command line, as `python -m benchmarks.NAME ...`
    date               UTC start of the run (when this module was first imported), ISO 8601
    wall_seconds       from then until the file was written
    git                {"commit", "dirty"}: HEAD and whether the checkout differs from it (tracked changes or
                       untracked files); both null where there is no git checkout (e.g. a copied tree)
    machine            {"cpu_model", "cpu_count", "cpus_usable" (this process's CPU affinity), "gpus" (CUDA device
                       names; [] without CUDA; null when the run did not import torch), "platform"}
    software           {"python", "torch", "numpy", "h5py", "hdf5"}: versions, null where not installed
    torch_threads      torch.get_num_threads() when the file was written (null when the run did not import torch)
    load_average_1min  {"start", "end"}: what else runs on the machine is unknown; this is the trace it leaves

Benchmarks run from the repository root as `python -m benchmarks.NAME`; a child process is started with
`module_command(NAME, ...)` and cwd=ROOT.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]  # the repository root
SHARED_DATA = ROOT.parent / "shared" / "data"  # data sets beside the checkout (absent on a bare machine)
PROVENANCE_FORMAT = "benchmarks.common/1"


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


_STARTED = time.time()
_START_LOAD = load_average()


# -- provenance ----------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict:
    torch = sys.modules.get("torch")  # not imported here: a benchmark that does not use torch does not pay for it
    gpus = None
    if torch is not None:
        gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                if torch.cuda.is_available() else [])
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "cpus_usable": usable, "gpus": gpus,
            "platform": platform.platform()}


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def software() -> dict:
    try:
        import h5py

        hdf5 = h5py.version.hdf5_version
    except ImportError:
        hdf5 = None
    return {"python": platform.python_version(), "torch": _version("torch"), "numpy": _version("numpy"),
            "h5py": _version("h5py"), "hdf5": hdf5}


def git_state() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", "-C", str(ROOT), *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout

    try:
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(git("status", "--porcelain").strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _main_module() -> str | None:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name.removesuffix(".__main__") if spec is not None and spec.name else None


def command_line() -> str:
    module = _main_module()
    argv = ["python", "-m", module, *sys.argv[1:]] if module else ["python", *sys.argv]
    return shlex.join(argv)


def provenance() -> dict:
    """The provenance block (see the module docstring), as of now."""
    torch = sys.modules.get("torch")
    return {
        "format": PROVENANCE_FORMAT,
        "benchmark": _main_module() or Path(sys.argv[0]).stem,
        "command": command_line(),
        "date": datetime.datetime.fromtimestamp(_STARTED, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - _STARTED, 1),
        "git": git_state(),
        "machine": machine(),
        "software": software(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "load_average_1min": {"start": _START_LOAD, "end": load_average()},
    }


# -- timing --------------------------------------------------------------------------------------------------------
def median_seconds(call: Callable[[], Any], repeats: int = 3, warmup: int = 1,
                   sync: Callable[[], Any] | None = None) -> float:
    """Median wall seconds of `repeats` timed calls of `call()` after `warmup` untimed ones; `sync` (e.g. a CUDA
    synchronize) runs after every call, inside the timing."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")

    def once() -> None:
        call()
        if sync is not None:
            sync()

    for _ in range(warmup):
        once()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_rss_mb(usage: resource.struct_rusage | None = None) -> float:
    """Peak resident set size in MiB: of this process, or of the rusage given (e.g. a child's, from os.wait4)."""
    usage = usage if usage is not None else resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_maxrss / (2 ** 20 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux


# -- results -------------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_result(path: str | Path, result: dict) -> Path:
    """Write `{"provenance": provenance(), **result}` as JSON to `path` atomically (a partial file, then a rename),
    creating its folder, and print where it went."""
    if "provenance" in result:
        raise ValueError("the result's own fields must not be called 'provenance'")
    path = Path(path)
    text = json.dumps({"provenance": provenance(), **result}, indent=1, default=_plain) + "\n"
    from data.atomic import write_text_atomic  # here: importing `data` loads numpy, which not every benchmark needs

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    print(f"wrote {path}")
    return path


def module_command(name: str, *args: Any) -> list[str]:
    """The argv that runs benchmark `name` in a child process; run it with cwd=ROOT."""
    return [sys.executable, "-m", f"benchmarks.{name}", *(str(arg) for arg in args)]


def code_fingerprint(*folders: str, exclude: tuple[str, ...] = ()) -> str:
    """12 hex digits of SHA-256 over the .py files under `folders` (relative to ROOT), names and bytes, leaving
    out those under the `exclude` folders: which version of the code made a result row, without needing git."""
    import hashlib

    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT)
            if any(name.is_relative_to(skip) for skip in exclude):
                continue
            digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def student_code() -> str:
    """The fingerprint of the code that trains and evaluates a student: student/ and data/, without
    student/screening/, which no training or evaluation benchmark runs (a faster screen keeps the rows' code)."""
    return code_fingerprint("student", "data", exclude=("student/screening",))


def read_csv(path: Path) -> list[dict]:
    """The rows of a results CSV as dicts ([] when the file does not exist yet)."""
    import csv

    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write a results CSV atomically (a killed write leaves the old file): `columns` in order, other keys ignored."""
    import csv

    from data.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial, open(partial, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
