"""Verifiers of the SynLogic grid puzzles: the answer is a grid (or star coordinates) checked against the rules.

Like upstream, most of these accept *any* grid that satisfies the puzzle's constraints, not only the generator's
solution: sudoku, calcudoko, futoshiki, skyscraper_puzzle, campsite, star_placement_puzzle, number_wall, numbrix and
survo. ``arc_agi`` is the exception: the grid must equal the gold output. Each verifier extracts the grid the way
the task's prompt asks for it (a ```python block, ``[[...]]`` rows or a Python list literal) and never evaluates
model text other than as a literal.
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Any

from mtarl.tasks.synlogic._common import (
    as_grid,
    double_bracket_contents,
    fenced_blocks,
    int_grid,
    is_int,
    json_or_literal,
    latin_square,
    literal,
    metadata_of,
    neighbours,
    nested_spans,
    parse_int,
)

MAX_GRID_SIDE = 40  # larger than any SynLogic grid; bounds the work on absurd answers

# ------------------------------------------------------------------------------------------------------ Sudoku

_BLANKS = (0, "0", "X", "x", None, "")


def _sudoku_grid(answer: str) -> Any:
    """The last ```python block, else the last ``((...))`` tuple literal in the answer (upstream's two routes)."""
    blocks = fenced_blocks(answer, "python")
    if blocks:
        return literal(blocks[-1])
    tuples = nested_spans(answer, "(", ")")
    return literal(tuples[-1]) if tuples else None


def keeps_givens(original: list, grid: list[list[int]], n: int) -> bool:
    """Every pre-filled cell of the puzzle keeps its number in the answer grid."""
    return all(original[r][c] in _BLANKS or parse_int(original[r][c]) == grid[r][c]
               for r in range(n) for c in range(n))


def verify_sudoku(game_data: dict, answer: str) -> bool:
    """A complete sudoku (rows, columns and boxes hold 1..n) that keeps every given digit."""
    original = as_grid(metadata_of(game_data).get("original_sudoku"))
    if original is None or len(original) != len(original[0]) or len(original) > MAX_GRID_SIDE:
        return False
    n = len(original)
    grid = int_grid(_sudoku_grid(answer), n)
    if grid is None or not latin_square(grid):
        return False
    box = math.isqrt(n)
    if box * box == n:  # square boxes exist only for square sizes (the task uses 9x9)
        for top in range(0, n, box):
            for left in range(0, n, box):
                cells = [grid[r][c] for r in range(top, top + box) for c in range(left, left + box)]
                if sorted(cells) != list(range(1, n + 1)):
                    return False
    return keeps_givens(original, grid, n)


# --------------------------------------------------------------------------------------------------- Calcudoko


def _rows_of_numbers(content: str) -> list[list[int]] | None:
    """``"1 2 3,2 3 1,3 1 2"`` (rows by commas, numbers by spaces) as rows of integers."""
    content = content.replace("，", ",")
    rows = []
    for row in content.split(","):
        cells = row.split()
        if not cells or not all(cell.isdigit() for cell in cells):
            return None
        rows.append([int(cell) for cell in cells])
    return rows


def _cell(cell: Any) -> tuple[int, int] | None:
    """A 1-based ``"(r,c)"`` string or ``[r, c]`` pair as 0-based coordinates."""
    if isinstance(cell, str):
        match = re.fullmatch(r"\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*", cell)
        if not match:
            return None
        return int(match.group(1)) - 1, int(match.group(2)) - 1
    if isinstance(cell, (list, tuple)) and len(cell) == 2 and all(is_int(v) for v in cell):
        return cell[0] - 1, cell[1] - 1
    return None


def _cage_holds(numbers: list[int], operator: str, target: Any) -> bool:
    """The cage arithmetic: sum/product of all cells, difference/quotient of a pair in either order."""
    if not is_int(target) and not isinstance(target, float):
        return False
    if operator == "+":
        return sum(numbers) == target
    if operator in ("*", "×", "x"):
        return math.prod(numbers) == target
    if len(numbers) != 2:
        return False
    a, b = numbers
    if operator in ("-", "−"):
        return abs(a - b) == target
    if operator in ("÷", "/"):
        return a * target == b or b * target == a  # exact division, either order
    return False


def verify_calcudoko(game_data: dict, answer: str) -> bool:
    """``[[r1,r2,...]]`` rows form a latin square whose cages meet their targets."""
    meta = metadata_of(game_data)
    n = parse_int(meta.get("grid_size", 4))
    regions = meta.get("regions")
    if n is None or not 1 <= n <= MAX_GRID_SIDE or not isinstance(regions, list):
        return False
    found = double_bracket_contents(answer)
    if not found:
        return False
    grid = _rows_of_numbers(found[-1])
    if grid is None or int_grid(grid, n) is None or not latin_square(grid):
        return False
    for region in regions:
        if not isinstance(region, dict) or not isinstance(region.get("cells"), list):
            return False
        cells = [_cell(cell) for cell in region["cells"]]
        if any(cell is None or not (0 <= cell[0] < n and 0 <= cell[1] < n) for cell in cells):
            return False
        numbers = [grid[r][c] for r, c in cells]
        if len(set(numbers)) != len(numbers):
            return False
        if not _cage_holds(numbers, str(region.get("operator", "")).strip(), region.get("target")):
            return False
    return True


# --------------------------------------------------------------------------------------------------- Futoshiki


def _futoshiki_grid(answer: str) -> list[list[int]] | None:
    """The last ``[[...]]``: rows separated by commas, the numbers of a row anywhere in it."""
    found = double_bracket_contents(answer, newlines=True, brackets=False)
    if not found:
        return None
    return [[int(x) for x in re.findall(r"\d+", row)] for row in found[-1].split(",")]


def _futoshiki_givens(game_data: dict, coords: list) -> list[int | None]:
    """The prefilled values: from the gold grid when stored, else read off the question's 'Current puzzle' grid."""
    gold = game_data.get("answer")
    gold = as_grid(literal(gold) if isinstance(gold, str) else gold)
    if gold is not None:
        return [gold[r][c] if 0 <= r < len(gold) and 0 <= c < len(gold[0]) else None for r, c in coords]
    lines, inside = [], False
    for line in str(game_data.get("question", "")).split("\n"):
        if "Current puzzle:" in line or "当前谜题" in line:
            inside = True
        elif inside and line.strip() and "X" in line:
            lines.append(line.split())
        elif inside and lines and line.strip():
            break
    values = []
    for r, c in coords:
        value = lines[r][c] if r < len(lines) and c < len(lines[r]) else None
        values.append(parse_int(value) if value not in (None, "X") else None)
    return values


def verify_futoshiki(game_data: dict, answer: str) -> bool:
    """A latin square that keeps the prefilled numbers and satisfies every inequality."""
    meta = metadata_of(game_data)
    n = parse_int(meta.get("grid_size"))
    if n is None or not 1 <= n <= MAX_GRID_SIDE:
        return False
    grid = int_grid(_futoshiki_grid(answer), n)
    if grid is None or not latin_square(grid):
        return False
    coords = [tuple(c) for c in meta.get("prefilled_coords") or []]
    if any(len(c) != 2 or not all(is_int(v) and 0 <= v < n for v in c) for c in coords):
        return False
    for (r, c), value in zip(coords, _futoshiki_givens(game_data, coords)):
        if value is not None and grid[r][c] != value:
            return False
    for constraint in meta.get("constraints") or []:
        try:
            (r1, c1), (r2, c2), sign = constraint
            first, second = grid[r1][c1], grid[r2][c2]
        except (TypeError, ValueError, IndexError):
            return False
        if (sign == ">" and not first > second) or (sign == "<" and not first < second):
            return False
    return True


# ------------------------------------------------------------------------------------------------- Skyscrapers


def _visible(heights: list[int]) -> int:
    """How many buildings are seen from the front of the line."""
    count, tallest = 0, 0
    for height in heights:
        if height > tallest:
            count, tallest = count + 1, height
    return count


def verify_skyscraper_puzzle(game_data: dict, answer: str) -> bool:
    """The first ```python grid is a latin square matching the four visibility clue lists."""
    meta = metadata_of(game_data)
    n = parse_int(meta.get("n"))
    clues = [meta.get(side) for side in ("top", "bottom", "left", "right")]
    if n is None or not 1 <= n <= MAX_GRID_SIDE or not all(isinstance(c, list) and len(c) == n for c in clues):
        return False
    blocks = fenced_blocks(answer, "python")
    if not blocks:
        return False
    value = literal(blocks[0])
    if value is None:  # the prompt's example carries comments; upstream retries without them
        value = literal(re.sub(r"#[^\n]*", "", blocks[0]))
    grid = int_grid(value, n)
    if grid is None or not latin_square(grid):
        return False
    top, bottom, left, right = clues
    columns = [list(col) for col in zip(*grid)]
    return (
        all(_visible(columns[j]) == top[j] for j in range(n))
        and all(_visible(columns[j][::-1]) == bottom[j] for j in range(n))
        and all(_visible(grid[i]) == left[i] for i in range(n))
        and all(_visible(grid[i][::-1]) == right[i] for i in range(n))
    )


# ----------------------------------------------------------------------------------------------- Star placement


def _star_coordinates(answer: str) -> list[tuple[int, int]] | None:
    """All 0-based star cells from the first flat ``{region: [(row, col), ...]}`` dict in the first python block."""
    blocks = fenced_blocks(answer, "python")
    if not blocks:
        return None
    found = re.search(r"\{[^{}]*\}", blocks[0])
    stars = literal(found.group(0)) if found else None
    if not isinstance(stars, dict):
        return None
    cells = []
    for coords in stars.values():
        if not isinstance(coords, (list, tuple)):
            return None
        for coord in coords:
            if not isinstance(coord, (list, tuple)) or len(coord) != 2 or not all(is_int(v) for v in coord):
                return None
            cells.append((coord[0] - 1, coord[1] - 1))  # the prompt's coordinates are 1-based
    return cells


def verify_star_placement_puzzle(game_data: dict, answer: str) -> bool:
    """k stars in every row, column and region, no two touching (diagonals included)."""
    meta = metadata_of(game_data)
    rows = meta.get("region_grid")
    if isinstance(rows, list):  # rows may also be stored as strings of region letters
        rows = [list(row) if isinstance(row, str) else row for row in rows]
    n, k, regions = parse_int(meta.get("n")), parse_int(meta.get("k")), as_grid(rows)
    if n is None or k is None or not 1 <= n <= MAX_GRID_SIDE or regions is None or len(regions) != n:
        return False
    cells = _star_coordinates(answer)
    if not cells or any(not (0 <= r < n and 0 <= c < n) for r, c in cells):
        return False
    stars = set(cells)
    if any(len(row) != n for row in regions):
        return False
    if any(sum((r, c) in stars for c in range(n)) != k for r in range(n)):
        return False
    if any(sum((r, c) in stars for r in range(n)) != k for c in range(n)):
        return False
    per_region: dict[Any, int] = {}
    for r in range(n):
        for c in range(n):
            label = str(regions[r][c])
            per_region[label] = per_region.get(label, 0) + ((r, c) in stars)
    if any(count != k for count in per_region.values()):
        return False
    return not any(other in stars for r, c in stars for other in neighbours(r, c, n, n, diagonal=True))


# ------------------------------------------------------------------------------------------------------ Campsite


def _tents_match_trees(grid: list[list[str]], tents: list, trees: list) -> bool:
    """A perfect matching of tents to orthogonally adjacent trees (augmenting paths, as in upstream)."""
    rows, cols = len(grid), len(grid[0])
    options = {tent: [n for n in neighbours(*tent, rows, cols) if grid[n[0]][n[1]] == "T"] for tent in tents}
    owner: dict[tuple[int, int], tuple[int, int]] = {}

    def assign(tent, seen) -> bool:
        for tree in options[tent]:
            if tree in seen:
                continue
            seen.add(tree)
            if tree not in owner or assign(owner[tree], seen):
                owner[tree] = tent
                return True
        return False

    return len(tents) == len(trees) and all(assign(tent, set()) for tent in tents)


def verify_campsite(game_data: dict, answer: str) -> bool:
    """Tents ('C') next to their own tree, none touching, matching the row and column counts; trees unmoved."""
    meta = metadata_of(game_data)
    original = as_grid(meta.get("grid"))
    n, m = parse_int(meta.get("n")), parse_int(meta.get("m"))
    row_counts, col_counts = meta.get("row_constraints"), meta.get("col_constraints")
    if original is None or n is None or m is None or not (0 < n <= MAX_GRID_SIDE and 0 < m <= MAX_GRID_SIDE):
        return False
    if not isinstance(row_counts, list) or not isinstance(col_counts, list):
        return False
    spans = nested_spans(answer)
    grid = as_grid(literal(spans[0]), n, m) if spans else None  # upstream takes the first grid
    if grid is None or not all(isinstance(cell, str) for row in grid for cell in row):
        return False
    if any((original[r][c] == "T") != (grid[r][c] == "T") for r in range(n) for c in range(m)):
        return False
    if [row.count("C") for row in grid] != row_counts:
        return False
    if [sum(grid[r][c] == "C" for r in range(n)) for c in range(m)] != col_counts:
        return False
    tents = [(r, c) for r in range(n) for c in range(m) if grid[r][c] == "C"]
    trees = [(r, c) for r in range(n) for c in range(m) if grid[r][c] == "T"]
    tent_set = set(tents)
    if any(other in tent_set for tent in tents for other in neighbours(*tent, n, m, diagonal=True)):
        return False
    return _tents_match_trees(grid, tents, trees)


# --------------------------------------------------------------------------------------------------- Number Wall


def _number_wall_grid(answer: str, n: int) -> list[list[Any]] | None:
    """The last grid literal, digit strings turned into integers; cells must be integers, 'X' or 'A'."""
    spans = nested_spans(answer)
    grid = as_grid(json_or_literal(spans[-1]), n, n) if spans else None
    if grid is None:
        return None
    for row in grid:
        for j, cell in enumerate(row):
            if isinstance(cell, str) and cell.isdigit():
                row[j] = int(cell)
            elif not (is_int(row[j]) or row[j] in ("X", "A")):
                return None
    return grid


def _islands(grid: list[list[Any]]) -> list[list[tuple[int, int]]]:
    """The orthogonally connected groups of non-wall cells."""
    n, seen, groups = len(grid), set(), []
    for start in ((r, c) for r in range(n) for c in range(n)):
        if start in seen or grid[start[0]][start[1]] == "A":
            continue
        group, queue = [], deque([start])
        seen.add(start)
        while queue:
            cell = queue.popleft()
            group.append(cell)
            for nb in neighbours(*cell, n, n):
                if nb not in seen and grid[nb[0]][nb[1]] != "A":
                    seen.add(nb)
                    queue.append(nb)
        groups.append(group)
    return groups


def verify_number_wall(game_data: dict, answer: str) -> bool:
    """Walls ('A') leave islands each holding one number equal to its size; no 2x2 wall, no diagonal contact."""
    meta = metadata_of(game_data)
    original, n = as_grid(meta.get("grid")), parse_int(meta.get("n"))
    if original is None or n is None or not 0 < n <= MAX_GRID_SIDE:
        return False
    grid = _number_wall_grid(answer, n)
    if grid is None:
        return False
    for r, row in enumerate(original):
        for c, given in enumerate(row):
            if is_int(given) and (r >= n or c >= n or grid[r][c] != given):
                return False
    wall = [[cell == "A" for cell in row] for row in grid]
    for r in range(n - 1):
        for c in range(n - 1):
            if wall[r][c] and wall[r][c + 1] and wall[r + 1][c] and wall[r + 1][c + 1]:
                return False
    island_of = {}
    for index, group in enumerate(_islands(grid)):
        numbers = [grid[r][c] for r, c in group if is_int(grid[r][c])]
        if len(numbers) != 1 or numbers[0] != len(group):
            return False
        island_of.update({cell: index for cell in group})
    for r in range(n - 1):
        for c in range(n - 1):
            # two islands meeting only at a corner: a diagonal border, which the rules forbid
            if not wall[r][c] and not wall[r + 1][c + 1] and wall[r][c + 1] and wall[r + 1][c]:
                if island_of[(r, c)] != island_of[(r + 1, c + 1)]:
                    return False
            if not wall[r][c + 1] and not wall[r + 1][c] and wall[r][c] and wall[r + 1][c + 1]:
                if island_of[(r, c + 1)] != island_of[(r + 1, c)]:
                    return False
    return True


# ------------------------------------------------------------------------------------------------------- Numbrix


def verify_numbrix(game_data: dict, answer: str) -> bool:
    """1..n^2 each once, the given clues kept, consecutive numbers orthogonally adjacent."""
    original = as_grid(metadata_of(game_data).get("grid"))
    if original is None or len(original) != len(original[0]) or len(original) > MAX_GRID_SIDE:
        return False
    n = len(original)
    spans = nested_spans(answer)
    # upstream drops quotes before parsing, so ["1", "2"] rows count as numbers
    grid = int_grid(literal(spans[-1].replace("'", "").replace('"', "")), n) if spans else None
    if grid is None:
        return False
    position = {grid[r][c]: (r, c) for r in range(n) for c in range(n)}
    if sorted(position) != list(range(1, n * n + 1)):
        return False
    if not keeps_givens(original, grid, n):
        return False
    for k in range(1, n * n):
        (r1, c1), (r2, c2) = position[k], position[k + 1]
        if abs(r1 - r2) + abs(c1 - c2) != 1:
            return False
    return True


# --------------------------------------------------------------------------------------------------------- Survo


def _survo_matrix(answer: str) -> Any:
    """The last ```python block, else the last fenced block, else the last grid literal (upstream's order)."""
    for blocks in (fenced_blocks(answer, "python"), fenced_blocks(answer, None)):
        if blocks:
            return json_or_literal(blocks[-1])
    spans = nested_spans(answer)
    return json_or_literal(spans[-1]) if spans else None


def verify_survo(game_data: dict, answer: str) -> bool:
    """Givens kept, the blanks filled with exactly the candidate numbers, every row and column summing right."""
    meta = metadata_of(game_data)
    original, candidates, n = as_grid(meta.get("original_matrix")), meta.get("candidate_numbers"), meta.get("n")
    n = parse_int(n)
    if original is None or n is None or not 1 < n <= MAX_GRID_SIDE or not isinstance(candidates, list):
        return False
    rows, cols = len(original), len(original[0])
    if rows != n or cols != n:
        return False
    matrix = as_grid(_survo_matrix(answer), rows, cols)
    if matrix is None or not all(is_int(cell) for row in matrix for cell in row):
        return False
    filled = []
    for r in range(n):
        for c in range(n):
            if original[r][c] != 0:
                if original[r][c] != matrix[r][c]:
                    return False
            else:
                filled.append(matrix[r][c])
    if sorted(filled) != sorted(candidates):
        return False
    # the last column and row hold the sums of the others
    if any(sum(matrix[r][: n - 1]) != matrix[r][n - 1] for r in range(n - 1)):
        return False
    return all(sum(matrix[r][c] for r in range(n - 1)) == matrix[n - 1][c] for c in range(n - 1))


# ------------------------------------------------------------------------------------------------------ ARC-AGI


def _arc_value(text: Any) -> Any:
    """Upstream's ARC answer parsing: lower-case, keep what follows the last ```json fence, JSON else literal."""
    if not isinstance(text, str):
        return text
    text = text.strip().lower().split("```json")[-1].split("```")[0].strip()
    return json_or_literal(text) if text else None


def verify_arc_agi(game_data: dict, answer: str) -> bool:
    """The output grid equals the gold grid exactly."""
    gold = _arc_value(game_data.get("answer"))
    return gold is not None and gold != "" and _arc_value(answer) == gold


VERIFIERS = {
    "arc_agi": verify_arc_agi,
    "calcudoko": verify_calcudoko,
    "campsite": verify_campsite,
    "futoshiki": verify_futoshiki,
    "number_wall": verify_number_wall,
    "numbrix": verify_numbrix,
    "skyscraper_puzzle": verify_skyscraper_puzzle,
    "star_placement_puzzle": verify_star_placement_puzzle,
    "sudoku": verify_sudoku,
    "survo": verify_survo,
}
