"""KOR-Bench (github.com/KOR-Bench/KOR-Bench): five evaluation categories, read from a local checkout.

Layout of the repository (not on the Hugging Face Hub): ``data/<category>/rule.jsonl`` (one rule per line: ``idx``,
``rule_content``, ...) and ``data/<category>/sample.jsonl`` (one question per line: ``idx``, ``rule_id``,
``question``, ``answer`` such as ``[[P]]``, and per category extra fields, e.g. ``real_life_answer`` in
counterfactual), with ``.json`` arrays accepted too, as KOR-Bench's own ``find_file`` does. ``path`` may name the
checkout, its ``data`` folder, or one category's folder.

The prompt is KOR-Bench's zero-shot prompt of the category (its ``config/prompt/zero-shot.yaml``, the text below),
filled with the rule and the question, followed by the study's ``<think>``/``<answer>`` instruction (project choice,
study.md 5.3).

The answer is the gold answer with the question's ``rule_id`` and ``idx``, as the JSON object
``{"answer": "[[P]]", "rule_id": "23", "idx": "50"}`` that the ``korbench:<category>`` verifiers read
(``mtarl.tasks.korbench.parse_gold``): KOR-Bench scores some operation and puzzle rules by ``rule_id`` or ``idx``, and
the registry's checkers receive only the gold. ``meta`` keeps ``idx``, ``rule_id`` and every other sample field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from mtarl.datasets.common import (BadRow, DatasetError, Problem, RawRow, Source, column, read_file, require_answer,
                                   safe_key)
from mtarl.prompts import KORBENCH_SUFFIX

CATEGORIES = ("operation", "logic", "cipher", "puzzle", "counterfactual")
FAMILY_PREFIX = "korbench:"

# KOR-Bench's zero-shot prompts, one per category; "{}" takes the rule, then the question. The text is the YAML
# literal blocks of config/prompt/zero-shot.yaml (in OpenCompass: korbench_dataset_config/prompt/0_shot.yaml).
_ANSWER_TAIL = "### Question:\n{}\n\n### Answer:\n"
TEMPLATES = {
    "cipher": (
        "You are an intelligent assistant that specializes in encryption and decryption tasks. Below are the rules "
        "for a specific cipher. When responding, please ensure that your output adheres to the specified encryption "
        "and decryption rules and format.\n\n### Instructions:\n\n"
        "1. Identify the relevant properties and objects specified in the rule, including the plaintext, keyword, and "
        "ciphertext.\n"
        "2. Follow the specified encryption or decryption operations precisely as described in the rules.\n"
        "3. Ensure your output is formatted according to the specified notation and symbols.\n\n"
        "### Cipher Rule:\n\n{}\n\n" + _ANSWER_TAIL
    ),
    "counterfactual": (
        "You are an advanced assistant with expertise in storytelling and rule-based reasoning. Your task is to "
        "carefully analyze the provided story, which includes specific rules and details, and use this information to "
        "accurately answer related questions.\n\n### Instructions:\n\n"
        "1. Thoroughly review the story to identify and understand the relevant details and rules.\n"
        "2. Use the context provided by the story to offer precise and insightful answers.\n"
        "3. Ensure your responses align with the rules and information given in the story.\n\n"
        "### Story Rule:\n\n{}\n\n" + _ANSWER_TAIL
    ),
    "logic": (
        "You are an intelligent assistant that helps with various logical reasoning tasks. Below is a custom-defined "
        "rule for a specific type of logic. When responding, please ensure that your output adheres to the specified "
        "logical rules and format.\n\n### Instructions:\n\n"
        "1. Identify the relevant properties and objects as specified in the rule.\n"
        "2. Apply the given logical operations or reasoning patterns.\n"
        "3. Ensure your output is formatted according to the specified notation and symbols.\n\n"
        "### Logic Rule:\n\n{}\n\n" + _ANSWER_TAIL
    ),
    "operation": (
        "You are an intelligent assistant specializing in evaluating custom operations. Below is a specific rule "
        "defined for a custom operation. Your task is to apply this rule accurately to the provided question.\n\n"
        "### Instructions:\n\n"
        "1. Carefully read and understand the definitions of the new operations in the rule.\n"
        "2. If the question does not specifically ask for it, your answer should be a number or a group of numbers.\n"
        "3. Double-check your final answer to ensure it follows the rule accurately.\n\n"
        "### Operation Rule:\n\n{}\n\n" + _ANSWER_TAIL
    ),
    "puzzle": (
        "You are an intelligent assistant specializing in solving custom puzzle problems. Below is a specific rule "
        "defined for a custom puzzle. Your task is to apply this rule accurately to the provided question.\n\n"
        "### Instructions:\n\n"
        "1. Thoroughly understand the rule provided. If needed, break down the rule into simpler components or "
        "steps.\n"
        "2. Apply the rule carefully to address the question presented.\n"
        "3. Verify your answer to ensure it aligns with the rule and the context of the puzzle.\n\n"
        "### Puzzle Rule:\n\n{}\n\n" + _ANSWER_TAIL
    ),
}


def korbench_prompt(category: str, rule_content: str, question: str) -> str:
    """KOR-Bench's zero-shot prompt of ``category`` for one rule and question, then the study's instruction."""
    return TEMPLATES[category].format(rule_content, question) + KORBENCH_SUFFIX


def korbench_gold(answer: str, rule_id: str, idx: str) -> str:
    """The gold a ``korbench:<category>`` verifier reads: the answer with the ids its rule-specific scoring needs."""
    return json.dumps({"answer": answer, "rule_id": rule_id, "idx": idx}, ensure_ascii=False)


def categories(spec_category) -> list[str]:
    """The categories a spec asks for: one name, a list of names, or ``all``."""
    if spec_category in (None, "all"):
        return list(CATEGORIES)
    names = [spec_category] if isinstance(spec_category, str) else list(spec_category)
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown or not names:
        raise DatasetError(f"KOR-Bench category {unknown or names!r} unknown; choose from {', '.join(CATEGORIES)} "
                           "or 'all'")
    return names


def category_dir(root: Path, category: str) -> Path:
    """The folder holding ``category``'s rule and sample files under a checkout, its data folder or the folder."""
    # A bare rule/sample folder is only taken for the category it is named after.
    candidates = [root / "data" / category, root / category] + ([root] if root.name == category else [])
    for candidate in candidates:
        if _find(candidate, "rule") and _find(candidate, "sample"):
            return candidate
    raise DatasetError(
        f"KOR-Bench: no rule and sample files of category {category!r} under '{root}' (looked for "
        f"data/{category}/rule.jsonl and sample.jsonl, also .json). Clone github.com/KOR-Bench/KOR-Bench and set "
        "this dataset's `path` in the config to the checkout."
    )


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".json", ".jsonl"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def open_source(spec: dict) -> Source:
    """The sample rows of the requested categories, each tagged with its category and its rule."""
    path = spec.get("path")
    if not path or not Path(path).expanduser().is_dir():
        raise DatasetError(
            f"KOR-Bench path {path!r} is not a local folder: KOR-Bench is not on the Hugging Face Hub. Clone "
            "github.com/KOR-Bench/KOR-Bench (elsewhere if this machine is offline, then copy it here) and set this "
            "dataset's `path` in the config to the checkout."
        )
    root = Path(path).expanduser()
    return Source(str(path), _rows(root, categories(spec.get("category"))))


def _rows(root: Path, names: list[str]) -> Iterator[RawRow]:
    # Each sample row carries its category and the category's rules under "_" keys, so that the converter stays a
    # function of one row like every other loader's; the "_" keys are not sample fields and never reach ``meta``.
    for category in names:
        folder = category_dir(root, category)
        rules = _rules(_find(folder, "rule"))
        for raw in read_file(_find(folder, "sample")):
            yield RawRow(raw.where, {"_category": category, "_rules": rules, **raw.data}, raw.index)


def _rules(path: Path) -> dict[str, dict]:
    """Rules by ``idx`` as text (KOR-Bench files hold ids as strings; integers are accepted as the same id)."""
    rules: dict[str, dict] = {}
    for raw in read_file(path):
        idx = str(column(raw, "idx"))
        if idx in rules:
            raise DatasetError(f"{raw.where}: rule idx {idx!r} repeats")
        rules[idx] = raw.data
    return rules


def converter():
    """The row converter of KOR-Bench samples (rows of ``_rows``, which carry their category and its rules)."""

    def convert(raw: RawRow) -> Problem:
        category, rules = raw.data["_category"], raw.data["_rules"]
        sample = {k: v for k, v in raw.data.items() if not k.startswith("_")}
        question = column(raw, "question")
        answer = require_answer(column(raw, "answer"), "answer")
        rule_id = str(column(raw, "rule_id"))
        rule = rules.get(rule_id)
        if rule is None:
            raise BadRow("unknown_rule", f"rule_id {rule_id!r} is not in the {category} rule file")
        for text, what in ((question, "question"), (rule.get("rule_content"), f"rule_content of rule {rule_id}")):
            if not isinstance(text, str) or not text.strip():
                raise BadRow("empty_prompt", f"empty {what}")
        idx = str(sample.get("idx", raw.index))
        # Every other sample field is kept as is (cipher samples have a "category" of their own, e.g. Decryption).
        meta = {k: v for k, v in sample.items() if k not in ("question", "answer")}
        meta.update({"idx": idx, "rule_id": rule_id})
        return Problem(
            key=f"{category}-{safe_key(idx)}",
            prompt=korbench_prompt(category, rule["rule_content"], question),
            statement=f"{rule['rule_content']}\n\n{question}",  # without KOR-Bench's template and our instruction
            answer=korbench_gold(answer, rule_id, idx),
            family=f"{FAMILY_PREFIX}{category}",
            subset=category,
            meta=meta,
        )

    return convert
