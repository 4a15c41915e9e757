"""The study's prompt texts, the chat message list and the pinned per-model chat settings (study.md 5.1-5.4)."""

from __future__ import annotations

import json

import pytest

from mtarl import tasks
from mtarl.prompts import (CHAT_SETTINGS, KORBENCH_SUFFIX, MATH_TEMPLATE, THINK_ANSWER_INSTRUCTION, chat_messages,
                           chat_settings, math_prompt)

# study.md 5.1, character for character (the official src/math_data_process.py), "\n\n" being two newlines.
STUDY_MATH_TEMPLATE = (
    "Solve the following problem step by step. First, think about the reasoning process in the mind and then provide "
    "the answer. The reasoning process is enclosed within <think> </think> and the final answer is enclosed within "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer "
    "here</answer>.\n\n"
)


def test_math_template_is_the_study_text_verbatim():
    assert MATH_TEMPLATE == STUDY_MATH_TEMPLATE
    assert MATH_TEMPLATE.endswith("<answer> answer here</answer>.\n\n")  # no space before </answer>, as official
    assert "\\boxed" not in MATH_TEMPLATE


def test_math_prompt_prepends_the_template_to_the_problem_verbatim():
    problem = "  What is $1+1$?\n"
    assert math_prompt(problem) == STUDY_MATH_TEMPLATE + problem


def test_korbench_suffix_asks_for_the_format_the_gate_checks():
    assert KORBENCH_SUFFIX == "\n" + THINK_ANSWER_INSTRUCTION
    assert STUDY_MATH_TEMPLATE.startswith("Solve the following problem step by step. " + THINK_ANSWER_INSTRUCTION)
    # the example the instruction gives is itself a well-formed answer
    example = THINK_ANSWER_INSTRUCTION.split("i.e., ")[1].rstrip(".")
    assert tasks.has_format(example) and tasks.extract_answer(example) == "answer here"


def test_chat_messages_are_an_optional_system_turn_then_one_user_turn():
    assert chat_messages("Solve it.") == [{"role": "user", "content": "Solve it."}]
    assert chat_messages("Solve it.", system_prompt="Be brief.") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Solve it."}]
    assert chat_messages("x", system_prompt="") == [{"role": "system", "content": ""}, {"role": "user", "content": "x"}]


def test_chat_settings_pin_the_stop_tokens_of_each_model():
    assert CHAT_SETTINGS["qwen2.5"]["stop_tokens"] == ["<|im_end|>", "<|endoftext|>"]
    assert CHAT_SETTINGS["llama3.1"]["stop_tokens"] == ["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"]
    assert CHAT_SETTINGS["qwen2.5"]["model_ids"] == ["Qwen/Qwen2.5-7B"]
    assert CHAT_SETTINGS["llama3.1"]["model_ids"] == ["meta-llama/Llama-3.1-8B-Instruct"]
    for settings in CHAT_SETTINGS.values():
        # the official policy: no system turn of ours (the template's default applies), a generation prompt, and
        # completions decoded without special tokens before scoring
        assert settings["system_prompt"] is None
        assert settings["add_generation_prompt"] is True and settings["skip_special_tokens"] is True
        assert json.loads(json.dumps(settings)) == settings  # plain data: goes into run manifests as is


def test_chat_settings_are_found_by_key_or_hub_id_and_returned_as_copies():
    assert chat_settings("qwen2.5") == chat_settings("Qwen/Qwen2.5-7B") == CHAT_SETTINGS["qwen2.5"]
    assert chat_settings("meta-llama/Llama-3.1-8B-Instruct")["stop_tokens"][0] == "<|eot_id|>"
    copy = chat_settings("llama3.1")
    copy["stop_tokens"].append("</s>")
    assert CHAT_SETTINGS["llama3.1"]["stop_tokens"] == ["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"]
    with pytest.raises(KeyError, match="no pinned chat settings for 'gpt2'"):
        chat_settings("gpt2")
