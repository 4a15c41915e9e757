"""Fetch a hub model or dataset at a pinned revision into ``resources/``, recording what was fetched.

The workflow's ``download`` rule (a local rule: it runs where the network is) calls
``mtarl download --repo ID --repo-type model|dataset|github --revision REV --out DIR``. A hub snapshot is fetched with
``huggingface_hub.snapshot_download`` at ``REV`` after resolving ``REV`` (a branch, tag or commit) to its commit (a
GitHub repository, KOR-Bench, as the tarball of the resolved commit), and
``DIR/mtarl-download.json`` records the repository, the requested revision, the resolved commit, the sha256 of every
file and one content hash over them. Jobs then read ``DIR`` offline, and ``read_record(DIR)`` gives their manifests
the revision and content hash of what they loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Callable

from mtarl import io

RECORD = "mtarl-download.json"
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


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path, except the record and huggingface_hub's own cache."""
    hashes = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == RECORD or rel.startswith(".cache/"):
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        hashes[rel] = digest.hexdigest()
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


def read_record(path: str | Path) -> dict | None:
    """The download record of a fetched directory, without the per-file list (None if ``path`` was not fetched)."""
    record_file = Path(path) / RECORD
    if not record_file.is_file():
        return None
    record = json.loads(record_file.read_text())
    return {k: v for k, v in record.items() if k != "files"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", required=True, help="hub id, e.g. Qwen/Qwen2.5-7B")
    parser.add_argument("--repo-type", choices=tuple(FETCHERS), required=True,
                        help="a hub model or dataset, or a GitHub repository")
    parser.add_argument("--revision", required=True, help="branch, tag or commit; the resolved commit is recorded")
    parser.add_argument("--out", required=True, help="directory to create")


def main(args: argparse.Namespace) -> None:
    download(args.repo, args.repo_type, args.revision, args.out)
