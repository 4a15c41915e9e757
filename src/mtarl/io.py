"""Atomic file output and run manifests.

Every stage writes through these helpers so that a file at its final path is always complete: data goes to a
temporary sibling first and is renamed into place (rename is atomic on one filesystem). Every output that a stage
produces carries a manifest (seed, library versions, hardware) so that a number can be traced to how it was made.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import polars as pl

# Libraries whose versions decide a result; recorded in every manifest.
TRACKED_PACKAGES = ("mtarl", "torch", "transformers", "trl", "tokenizers", "accelerate", "polars", "math-verify", "vllm")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path`` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_parquet(df: pl.DataFrame, path: str | os.PathLike, manifest: dict | None = None) -> None:
    """Write ``df`` atomically; ``manifest`` goes into the parquet key-value metadata under ``mtarl``."""
    with atomic_path(path) as tmp:
        meta = {"mtarl": json.dumps(manifest, sort_keys=True)} if manifest is not None else None
        df.write_parquet(tmp, metadata=meta)


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest stored in a parquet file written by :func:`write_parquet` (empty if none)."""
    meta = pl.read_parquet_metadata(path)
    return json.loads(meta["mtarl"]) if "mtarl" in meta else {}


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def append_jsonl(record: dict, path: str | os.PathLike) -> None:
    """Append one JSON line and flush it to disk (logs survive a kill up to the last full line)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=float) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL log, ignoring a final line cut short by a kill."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def library_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def manifest(stage: str, seed: int | None, settings: dict | None = None, **extra: Any) -> dict:
    """The provenance record written with every output of ``stage``."""
    return {
        "stage": stage,
        "seed": seed,
        "settings": settings or {},
        "versions": library_versions(),
        "hardware": hardware(),
        **extra,
    }
