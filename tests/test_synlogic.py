"""The SynLogic-Easy verifiers: hand-written right and wrong answers for every task, in the real game_data format.

Each record below follows the generator of its task in SynLogic (``games/tasks/<task>/scripts``): the keys of
``metadata`` and the form of ``answer`` are the ones the upstream verifier reads. Answers are what a model writes
inside ``<answer>...</answer>``.
"""

from __future__ import annotations

import json
import time

import pytest

from mtarl import tasks
from mtarl.tasks import synlogic
from mtarl.tasks.synlogic import TASKS, verify


def record(answer="", metadata=None, question="(question text)"):
    """A game record as SynLogic stores it in ``extra_info.game_data_str`` (before JSON encoding)."""
    return {"question": question, "answer": answer, "difficulty": 1, "metadata": metadata}


SUDOKU = [
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
    [4, 5, 6, 7, 8, 9, 1, 2, 3],
    [7, 8, 9, 1, 2, 3, 4, 5, 6],
    [2, 3, 4, 5, 6, 7, 8, 9, 1],
    [5, 6, 7, 8, 9, 1, 2, 3, 4],
    [8, 9, 1, 2, 3, 4, 5, 6, 7],
    [3, 4, 5, 6, 7, 8, 9, 1, 2],
    [6, 7, 8, 9, 1, 2, 3, 4, 5],
    [9, 1, 2, 3, 4, 5, 6, 7, 8],
]
SUDOKU_PUZZLE = [["X" if (r + c) % 3 == 0 else v for c, v in enumerate(row)] for r, row in enumerate(SUDOKU)]
SUDOKU_TEXT = str(tuple(tuple(row) for row in SUDOKU))
SUDOKU_BAD_ROW = [[2, 1, *SUDOKU[0][2:]], *SUDOKU[1:]]  # two digits swapped: columns repeat
# a valid sudoku that ignores the givens: every 1 and 2 exchanged
SUDOKU_RELABELLED = [[{1: 2, 2: 1}.get(v, v) for v in row] for row in SUDOKU]

ZEBRA_GOLD = json.dumps({"header": ["House", "Name", "Pet"], "rows": [["1", "Alice", "cat"], ["2", "Bob", "dog"]]})

# task -> list of (game record, answers that must pass, answers that must fail)
CASES: dict[str, list[tuple[dict, list[str], list[str]]]] = {
    "arc_agi": [
        (
            record(answer=[[1, 2], [3, 4]]),
            ["```json\n[[1, 2], [3, 4]]\n```", "[[1,2],[3,4]]"],
            ["[[1, 2], [4, 3]]", "[[1, 2]]", "```json\n[[1, 2], [3, 4]\n```"],
        ),
        (record(answer="[[0, 5], [5, 0]]"), ["[[0, 5], [5, 0]]"], ["[[5, 0], [0, 5]]"]),  # gold stored as text
    ],
    "boolean_expressions": [
        (
            record(answer="A,C"),
            ["\\boxed{A, C}", "The true ones are \\boxed{C,A}", "\\boxed{\\text{A, C}}"],
            ["\\boxed{A}", "A, C", "\\boxed{A, B, C}"],
        )
    ],
    "buggy_tables": [
        (record(answer="12.35"), ["12.35", "The mean of the column is 12.35"], ["12.3", "12.34", "12.350"]),
    ],
    "calcudoko": [
        (
            record(
                answer="[[1 2 3,2 3 1,3 1 2]]",
                metadata={
                    "grid_size": 3,
                    "regions": [
                        {"cells": ["(1,1)", "(1,2)"], "target": 2, "operator": "÷"},
                        {"cells": ["(1,3)", "(2,3)"], "target": 2, "operator": "-"},
                        {"cells": ["(2,1)", "(3,1)"], "target": 1, "operator": "-"},
                        {"cells": ["(2,2)", "(3,2)", "(3,3)"], "target": 6, "operator": "+"},
                    ],
                },
            ),
            ["[[1 2 3,2 3 1,3 1 2]]", "The grid is [[1 2 3, 2 3 1, 3 1 2]]"],
            # a latin square breaking the (1,3)-(2,3) cage; a short grid (upstream pads it with 1s); a repeat
            ["[[1 2 3,3 1 2,2 3 1]]", "[[1 2 3,2 3 1]]", "[[1 2 3,2 3 1,3 1 1]]", "1 2 3\n2 3 1\n3 1 2"],
        )
    ],
    "campsite": [
        (
            record(
                metadata={
                    "grid": [["X", "T", "X"], ["X", "X", "X"], ["T", "X", "X"]],
                    "solution": [["C", "T", "X"], ["X", "X", "X"], ["T", "C", "X"]],
                    "row_constraints": [1, 0, 1],
                    "col_constraints": [1, 1, 0],
                    "n": 3,
                    "m": 3,
                    "tree_density": 0.2,
                }
            ),
            ["[['C', 'T', 'X'], ['X', 'X', 'X'], ['T', 'C', 'X']]", '[["C","T","X"],["X","X","X"],["T","C","X"]]'],
            [
                "[['X', 'T', 'C'], ['X', 'X', 'X'], ['T', 'C', 'X']]",  # column counts broken
                "[['C', 'X', 'T'], ['X', 'X', 'X'], ['T', 'C', 'X']]",  # a tree moved
                "[['C', 'T', 'X'], ['X', 'C', 'X'], ['T', 'X', 'X']]",  # tents touch, counts broken
                "C T X / X X X / T C X",
            ],
        )
    ],
    "cipher": [
        (
            record(answer="[[KHOOR]]"),
            ['```python\n[["KHOOR"]]\n```', "[['KHOOR']]", "[[KHOOR]]"],
            ['[["KHOOP"]]', "KHOOR", '```python\n__import__("os").getcwd()\n```', '[["KHOOR", "X"]]'],
        )
    ],
    "cryptarithm": [
        (
            record(answer="123+456=579"),
            ["123 + 456 = 579", "So the numeric equation is 123+456=579."],
            ["123+465=588", "ABC+DEF=GHI", "579"],
        )
    ],
    "dyck_language": [
        (
            record(metadata={"full_sequence": "([])({})([()])", "question_sequence": "([])({})([(", "n_types": 3}),
            ["([])({})([()])", " ( [ ] ) ( { } )\n( [ ( ) ] ) ", '"([])({})([()])"'],
            ["([])({})([(", "([])({})([()]))", ")"],
        )
    ],
    "dyck_language_errors": [
        (record(metadata={"is_valid": False, "first_error_pos": 7}), ["7", " 7 "], ["6", "-1", "valid", "seven"]),
        (record(metadata={"is_valid": True, "first_error_pos": None}), ["-1", "valid"], ["3", "invalid", "0"]),
    ],
    "dyck_language_reasoning_errors": [
        (record(metadata={"error_indices": [3, 10]}), ["3,10", "[3, 10]", "10，3"], ["3", "3,10,12", "unclear 3,10"]),
        (record(metadata={"error_indices": []}), ["", "no errors", "[]"], ["5", "1,2"]),
    ],
    "futoshiki": [
        (
            record(
                question="Solve.\nCurrent puzzle:\n1 X X\nX X X\nX X 1\n\nConstraints:\n(1,2) < (1,3)\n(2,1) > (3,1)",
                answer=[[1, 2, 3], [3, 1, 2], [2, 3, 1]],
                metadata={
                    "grid_size": 3,
                    "num_inequality_signs": 2,
                    "num_prefilled_coords": 2,
                    "prefilled_coords": [[0, 0], [2, 2]],
                    "constraints": [[[0, 1], [0, 2], "<"], [[1, 0], [2, 0], ">"]],
                },
            ),
            ["[[1 2 3, 3 1 2, 2 3 1]]", "Final: [[1 2 3,3 1 2,2 3 1]]"],
            ["[[1 3 2, 2 1 3, 3 2 1]]", "[[2 1 3, 3 2 1, 1 3 2]]", "[[1 2 3, 3 1 2]]", "[[1 2 3, 3 1 2, 2 3 3]]"],
        )
    ],
    "math_path": [
        (
            record(answer="3 +4 *2 = 11", metadata={"ref_expr": "3 +4 *2 = 11", "query_expr": "?+4*? = 11"}),
            ["[[3+4*2=11]]", "[[7+4*1=11]]", "[[ 3 + 4 * 2 = 11 ]]"],
            ["[[3+4*3=11]]", "[[3+5*2=11]]", "[[3-4*2=11]]", "3+4*2=11", "[[3+4*2=11=11]]"],
        ),
        (
            record(metadata={"ref_expr": "(6+2)/4 %5 = 2", "query_expr": "(?+2)/?%5 = 2"}),
            ["[[(6+2)/4%5=2]]", "[[(2+2)/2%5=2]]"],
            ["[[(6+2)/0%5=2]]", "[[(6+2)/3%5=2]]"],
        ),
    ],
    "mathador": [
        (
            record(
                metadata={
                    "numbers": [3, 3, 8, 8],
                    "solutions": [],
                    "candidates": list(range(1, 10)),
                    "operators": ["+", "-", "*", "/"],
                    "result": 24,
                    "num_of_numbers": 4,
                }
            ),
            ["```python\n8 / (3 - 8 / 3)\n```", "Working...\n```python\n8/(3-8/3)\n```"],
            [
                "```python\n3 + 3 + 8 + 8\n```",  # well formed, equals 22: upstream accepts it (P10)
                "```python\n8 * 3\n```",  # numbers missing
                "```python\n8**3/8*3\n```",  # power is not an allowed operation
                "8 / (3 - 8 / 3)",  # the prompt asks for a ```python block
                "```python\n8 / (3 - 8 / 3) + 0\n```",  # an extra number
                "```python\n8 / (3 - 8 / 3) # 24\n```",
            ],
        ),
        (
            record(metadata={"numbers": [1, 2, 3, 4], "operators": ["+", "-", "*", "/"], "result": 24}),
            ["```python\n1*2*3*4\n```", "```python\n(1 + 2 + 3) * 4\n```"],
            ["```python\n1+2+3+4\n```", "```python\n(1 + 2) * 3 * 4\n```"],
        ),
    ],
    "number_wall": [
        (
            record(metadata={"grid": [[2, "X", "X"], ["X", "X", "X"], [3, "X", "X"]], "n": 3}),
            ['[[2, "X", "A"], ["A", "A", "A"], [3, "X", "X"]]', "[['2', 'X', 'A'], ['A', 'A', 'A'], ['3', 'X', 'X']]"],
            [
                '[[2, "A", "A"], ["X", "A", "A"], [3, "X", "X"]]',  # a 2x2 wall block, islands merge
                '[[2, "X", "A"], ["A", "A", "A"], [3, "X", "A"]]',  # island of 3 has 2 cells
                '[[3, "X", "A"], ["A", "A", "A"], [3, "X", "X"]]',  # a given number changed
                '[[2, "X", "B"], ["A", "A", "A"], [3, "X", "X"]]',
            ],
        )
    ],
    "numbrix": [
        (
            record(metadata={"grid": [[1, "X", "X"], ["X", "X", "X"], ["X", "X", 9]]}),
            ["[[1, 2, 3], [6, 5, 4], [7, 8, 9]]", "[['1', '2', '3'], ['6', '5', '4'], ['7', '8', '9']]"],
            ["[[1, 2, 3], [4, 5, 6], [7, 8, 9]]", "[[9, 2, 3], [6, 5, 4], [7, 8, 1]]", "[[1, 2], [4, 3]]"],
        )
    ],
    "object_properties": [
        (record(answer="7"), ["\\boxed{7}", "So in total \\boxed{ 7 }"], ["\\boxed{8}", "7", "\\boxed{seven}"]),
    ],
    "operation": [
        (record(answer="3/4"), ["\\boxed{\\frac{3}{4}}", "0.75", "3/4"], ["\\boxed{4/3}", "0.7", "three quarters"]),
    ],
    "skyscraper_puzzle": [
        (
            record(metadata={"n": 3, "top": [3, 2, 1], "bottom": [1, 2, 2], "left": [3, 2, 1], "right": [1, 2, 2]}),
            [
                "```python\n[[1, 2, 3], [2, 3, 1], [3, 1, 2]]\n```",
                "```python\n[\n    [1, 2, 3],  # row 1\n    [2, 3, 1],\n    [3, 1, 2]\n]\n```",
            ],
            [
                "```python\n[[1, 3, 2], [2, 1, 3], [3, 2, 1]]\n```",
                "[[1, 2, 3], [2, 3, 1], [3, 1, 2]]",
                "```python\n[[1, 2, 3], [2, 3, 1], [3, 1, 1]]\n```",
            ],
        )
    ],
    "space_reasoning": [(record(answer="B"), ["\\boxed{B}", "\\boxed{b}"], ["\\boxed{C}", "B"])],
    "star_placement_puzzle": [
        (
            record(
                metadata={
                    "n": 4,
                    "k": 1,
                    "region_grid": [list("AABB"), list("AABB"), list("CCDD"), list("CCDD")],
                }
            ),
            [
                "```python\n{'A': [(1, 2)], 'B': [(2, 4)], 'C': [(3, 1)], 'D': [(4, 3)]}\n```",
                "```python\nstars = {'B': [(1, 3)], 'A': [(2, 1)], 'D': [(3, 4)], 'C': [(4, 2)]}\n```",
            ],
            [
                "```python\n{'A': [(0, 1)], 'B': [(1, 3)], 'C': [(2, 0)], 'D': [(3, 2)]}\n```",  # 0-based
                "```python\n{'A': [(1, 2)], 'B': [(2, 4)], 'C': [(3, 1)]}\n```",  # a star missing
                # every row, column and region holds one star, but (2,3) and (3,2) touch diagonally
                "```python\n{'A': [(1, 1)], 'B': [(2, 3)], 'C': [(3, 2)], 'D': [(4, 4)]}\n```",
                "{'A': [(1, 2)], 'B': [(2, 4)], 'C': [(3, 1)], 'D': [(4, 3)]}",  # no python block
            ],
        )
    ],
    "sudoku": [
        (
            record(
                answer=SUDOKU_TEXT,
                metadata={"original_sudoku": SUDOKU_PUZZLE, "complete_sudoku": SUDOKU, "difficulty": 1},
            ),
            [f"```python\n{SUDOKU_TEXT}\n```", SUDOKU_TEXT, f"```python\n{SUDOKU}\n```"],
            [
                f"```python\n{tuple(tuple(r) for r in SUDOKU_BAD_ROW)}\n```",
                f"```python\n{tuple(tuple(r) for r in SUDOKU_RELABELLED)}\n```",
                f"```python\n{tuple(tuple(r) for r in SUDOKU[:8])}\n```",
            ],
        )
    ],
    "survo": [
        (
            record(
                metadata={
                    "original_matrix": [[0, 2, 3], [3, 0, 7], [4, 6, 10]],
                    "candidate_numbers": [1, 4],
                    "n": 3,
                }
            ),
            ["```python\n[[1, 2, 3], [3, 4, 7], [4, 6, 10]]\n```", "[[1, 2, 3], [3, 4, 7], [4, 6, 10]]"],
            [
                "```python\n[[4, 2, 3], [3, 1, 7], [4, 6, 10]]\n```",  # row sums broken
                "```python\n[[1, 2, 3], [3, 4, 7], [4, 6, 11]]\n```",  # a given changed
                "```python\n[[1, 2, 3], [3, 4, 7]]\n```",
            ],
        )
    ],
    "time_sequence": [
        (
            record(answer=[90, 3], metadata={"n": 5, "records": {"answers": {"answer_maxLen": 90, "answer_nums": 3}}}),
            ["[90, 3]", "The answer is [90，3]"],
            ["[3, 90]", "[90]", "90, 3"],
        )
    ],
    "web_of_lies": [
        (
            record(answer="yes, no, yes"),
            ["**yes, no, yes**", "The answer is: **Yes, No, Yes**", "yes, no, yes"],
            ["**yes, yes, yes**", "**yes, no**", "I believe: **no, no, yes**"],
        ),
        (record(answer="是, 否, 是"), ["**是，否，是**"], ["**否，否，是**"]),
    ],
    "word_sorting": [
        (
            record(answer="apple, banana, cherry"),
            ["\\boxed{apple, banana, cherry}", "\\boxed{apple,banana,cherry}"],
            ["\\boxed{banana, apple, cherry}", "apple, banana, cherry"],
        )
    ],
    "word_sorting_mistake": [
        (record(answer="3"), ["\\boxed{3}"], ["\\boxed{4}", "\\boxed{No}", "3"]),
        (record(answer="No"), ["\\boxed{No}", "\\boxed{no}"], ["\\boxed{2}"]),
    ],
    "zebra_puzzle": [
        (
            record(answer=ZEBRA_GOLD),
            [f"```json\n{ZEBRA_GOLD}\n```", ZEBRA_GOLD],
            [
                ZEBRA_GOLD.replace("Alice", "Carol"),
                ZEBRA_GOLD.replace('["1", "Alice"', '[1, "Alice"'),  # the house number as an int: types differ
                "Alice has the cat.",
            ],
        )
    ],
}


def _cases(kind: int):
    return [
        pytest.param(task, case, answer, id=f"{task}-{i}-{j}")
        for task, records in sorted(CASES.items())
        for i, case in enumerate(records)
        for j, answer in enumerate(case[kind])
    ]


def test_every_task_has_cases():
    """Each SynLogic-Easy task has at least one right and one wrong answer above, and no stray task is tested."""
    assert set(CASES) == set(TASKS)
    for task, records in CASES.items():
        assert records and all(good and bad for _, good, bad in records), task


def test_task_list_is_synlogic_easy():
    """27 tasks: SynLogic's 35 without the eight removed from Easy (paper, Appendix A.2)."""
    removed = {"arrow_maze", "goods_exchange", "kukurasu", "minesweeper", "norinori", "object_counting",
               "space_reasoning_tree", "wordscapes"}
    assert len(TASKS) == 27 == len(set(TASKS))
    assert not removed & set(TASKS)
    assert "mathador" in TASKS and synlogic.ALIASES["game_of_24"] == "mathador"


@pytest.mark.parametrize("task, case, answer", _cases(1))
def test_right_answers_pass(task, case, answer):
    assert verify(task, case[0], answer) is True


@pytest.mark.parametrize("task, case, answer", _cases(2))
def test_wrong_answers_fail(task, case, answer):
    assert verify(task, case[0], answer) is False


def test_game_of_24_rejects_a_well_formed_expression_off_target():
    """Upstream ends in ``abs(result - result) < 1e-10``, so any valid use of the numbers passes (study.md P10)."""
    game = CASES["mathador"][0][0]
    assert verify("mathador", game, "```python\n(3 + 3) * 8 / 8\n```") is False  # = 6
    assert verify("mathador", game, "```python\n8 / (3 - 8 / 3)\n```") is True  # = 24 exactly
    other_target = {**game, "metadata": {**game["metadata"], "result": 22}}
    assert verify("mathador", other_target, "```python\n3 + 3 + 8 + 8\n```") is True


def test_no_model_text_is_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    for task, records in CASES.items():
        for wrapped in (f"```python\n{payload}\n```", f"[[{payload}]]", f"\\boxed{{{payload}}}", payload):
            assert verify(task, records[0][0], wrapped) is False
    assert not marker.exists()


MALFORMED = [
    "",
    "   ",
    "[[",
    "]]",
    "```python",
    "```python\n```",
    "```json\n{",
    "\\boxed{",
    "\\boxed{}}}",
    "[" * 5000 + "]" * 4999,
    "(" * 5000,
    "9" * 5000,
    "\x00\x01",
    "{'a': [(1,",
    "None",
    "[[1, 2], [3]]",
    '{"a": 1}',
    "[[-1, -1], [-1, -1]]",
    "[[1e999, 2]]",
    "```python\n1/0\n```",
]


@pytest.mark.parametrize("task", TASKS)
def test_malformed_answers_fail_without_raising(task):
    game = CASES[task][0][0]
    for answer in MALFORMED:
        assert verify(task, game, answer) is False, repr(answer[:40])
    assert verify(task, game, "x" * (synlogic.MAX_ANSWER_CHARS + 1)) is False
    assert verify(task, game, None) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("task", TASKS)
def test_malformed_records_fail_without_raising(task):
    right = CASES[task][0][1][0]
    broken = [{}, {"metadata": None}, {"metadata": "not json"}, {"answer": None, "metadata": {"grid": "x", "n": -1}},
              {"answer": {"a": 1}, "metadata": {"n": 10**9, "grid_size": 10**9, "numbers": "1234"}}]
    for game in broken:
        assert verify(task, game, right) is False, game
    assert verify(task, "not json", right) is False


@pytest.mark.parametrize("task", TASKS)
def test_checks_are_bounded_in_time(task):
    """Degenerate answers at the size cap (nested brackets, many fences, long sums) are settled quickly."""
    game = CASES[task][0][0]
    size = synlogic.MAX_ANSWER_CHARS
    inputs = [
        "[" * (size // 2) + "]" * (size // 2),
        ("```python\n" * size)[:size],
        ("1+" * size)[: size - 1],
        ("\\boxed{" * size)[:size],
        ("[[1 2," * size)[:size],
        "[[" + ", ".join(["[1, 2, 3]"] * 1500) + "]]",
        "9" * size,  # one long digit run (regexes retried inside it go quadratic)
        "[[" * (size // 2),
        "12.3" * (size // 4),
        ("-1" * size)[:size],
        ("**yes" * size)[:size],
        ("{[(" * size)[:size],
    ]
    start = time.perf_counter()
    for answer in inputs:
        assert verify(task, game, answer) is False
    assert time.perf_counter() - start < 5.0


def test_number_wall_rejects_islands_meeting_at_a_corner():
    """Both islands have the right size and no 2x2 wall exists, but they touch diagonally (the rules forbid it)."""
    game = record(metadata={"grid": [[1, "X", "X"], ["X", 1, "X"], ["X", "X", "X"]], "n": 3})
    assert verify("number_wall", game, '[[1, "A", "A"], ["A", 1, "A"], ["A", "A", "A"]]') is False


def test_grid_puzzles_accept_any_valid_solution():
    """Like upstream, constraint-checked tasks accept a solution other than the generator's."""
    blank = [["X"] * 9 for _ in range(9)]
    game = record(metadata={"original_sudoku": blank})
    assert verify("sudoku", game, f"```python\n{SUDOKU_RELABELLED}\n```") is True


def test_unknown_task_raises():
    with pytest.raises(ValueError, match="unknown SynLogic task"):
        verify("no_such_task", {}, "")


def test_alias_game_of_24():
    game = CASES["mathador"][0][0]
    assert verify("game_of_24", game, "```python\n8/(3-8/3)\n```") is True


def test_every_task_is_a_registered_family():
    families = set(tasks.known_families())
    assert {f"synlogic:{task}" for task in TASKS} <= families


@pytest.mark.parametrize("task", TASKS)
def test_family_scores_a_completion_against_game_data_str(task):
    """Through the registry, as training and evaluation call it: the gold is the row's ``game_data_str``."""
    game, right, wrong = CASES[task][0]
    gold = json.dumps(game, ensure_ascii=False)
    verdict = tasks.verify(f"synlogic:{task}", f"<think>\nwork\n</think>\n<answer>\n{right[0]}\n</answer>", gold)
    assert verdict.format_ok and verdict.accurate and verdict.correct
    verdict = tasks.verify(f"synlogic:{task}", f"<think>w</think><answer>{wrong[0]}</answer>", gold)
    assert not verdict.accurate


def test_a_gold_that_is_not_a_json_record_is_never_matched():
    completion = f"<answer>{SUDOKU_TEXT}</answer>"
    assert tasks.verify("synlogic:sudoku", completion, "{'original_sudoku': 1}").accurate is False
    assert tasks.verify("synlogic:sudoku", completion, "[1, 2]").accurate is False
