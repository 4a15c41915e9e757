"""Benchmark of the math verifier: naive per-sample checks vs mtarl.tasks.math.verify_many (deduplicated, parallel).

The workload is a probe-sized batch: ``--problems`` problems x ``--samples`` samples (default 500 x 256, as pass@256
on 500 problems). Gold answers are in MATH500's LaTeX forms (integers, fractions, radicals, multiples of pi,
intervals, points, polynomials, degrees, percentages, solution lists, vectors, multiple-choice letters, names). Each
problem has a handful of distinct candidate answers (correct ones in different but equivalent forms, wrong ones, and
unparseable strings), drawn with Zipf-like weights, so a few answers dominate, as in a model's samples.

Timed, each from a cold start:
  (a) naive: every sample checked on its own, one after the other, in this process (``judge``, math-verify's own
      timeouts). On the default workload that would take minutes, so it runs on the first ``--naive-problems``
      problems (all their samples, in order) and is extrapolated linearly; the output says so;
  (b) dedup only: each unique (answer, gold) pair checked once, in this process (to separate the two gains);
  (c) verify_many: deduplicated and spread over ``--workers`` worker processes (worker start-up included).
Agreement: (c) must equal (a) on every naive sample and (b) on every sample.

Run: ``.venv/bin/python bench/math_verify.py [--problems 500] [--samples 256] [--naive-problems 20] [--workers N]``
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

# Python puts this script's folder first on sys.path, where this file would shadow the math_verify library itself.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

from mtarl.tasks import math as mv  # noqa: E402

UNPARSEABLE = ["", "I don't know", r"\frac{", "}{", r"\left(", "???", "see the reasoning above",
               "Let me reconsider: the previous step was wrong because", r"\sqrt{", "undefined behaviour ]["]
LETTERS = "ABCDE"


def _fraction(rng):
    q = int(rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 20, 25]))
    p = int(rng.integers(1, 3 * q))
    while math.gcd(p, q) != 1:
        p += 1
    correct = [rf"\frac{{{p}}}{{{q}}}", rf"\dfrac{{{p}}}{{{q}}}", f"{p}/{q}", rf"\frac{{{2 * p}}}{{{2 * q}}}"]
    if 100 % q == 0 or q in (8, 16):
        correct.append(f"{p / q:g}")
    wrong = [rf"\frac{{{q}}}{{{p}}}", rf"\frac{{{p + 1}}}{{{q}}}", f"{p / q:.2f}" if 100 % q else f"{p / q + 1:g}"]
    return rf"\frac{{{p}}}{{{q}}}", correct, wrong


def _integer(rng):
    n = int(rng.integers(-50, 3000))
    correct = [str(n), rf"\boxed{{{n}}}", f"{n}.0", f"x = {n}", rf"{n} \text{{ units}}"]
    if abs(n) >= 1000:
        correct.append(f"{n:,}")
    wrong = [str(n + 1), str(n - 1), str(2 * n + 3), str(-n - 1), str(10 * n + 1)]
    return str(n), correct, wrong


def _radical(rng):
    a, b = int(rng.integers(2, 12)), int(rng.choice([2, 3, 5, 6, 7, 10]))
    correct = [rf"{a}\sqrt{{{b}}}", rf"{a} \sqrt{{{b}}}", rf"\sqrt{{{a * a * b}}}", rf"\boxed{{{a}\sqrt{{{b}}}}}"]
    wrong = [rf"{a}\sqrt{{{b + 1}}}", str(a * b), rf"\sqrt{{{a * b}}}", rf"{a + 1}\sqrt{{{b}}}"]
    return rf"{a}\sqrt{{{b}}}", correct, wrong


def _pi(rng):
    k, m = int(rng.integers(1, 8)), int(rng.choice([2, 3, 4, 6]))
    while math.gcd(k, m) != 1:
        k += 1
    correct = [rf"\frac{{{k}\pi}}{{{m}}}", rf"\frac{{{k}}}{{{m}}}\pi", rf"{k}\pi/{m}"]
    wrong = [rf"\frac{{{k}}}{{{m}}}", rf"\frac{{{k + 1}\pi}}{{{m}}}", f"{180 * k // m}^\\circ"]
    return rf"\frac{{{k}\pi}}{{{m}}}", correct, wrong


def _interval(rng):
    a = int(rng.integers(-9, 5))
    b = a + int(rng.integers(1, 9))
    if rng.random() < 0.3:
        correct = [rf"(-\infty,{b}]", rf"\left(-\infty, {b}\right]"]
        return rf"(-\infty, {b}]", correct, [rf"(-\infty, {b})", f"[{b}, \\infty)"]
    correct = [f"[{a},{b})", rf"\left[{a}, {b}\right)", rf"x \in [{a}, {b})"]
    return f"[{a}, {b})", correct, [f"({a},{b})", f"[{a},{b}]", f"[{a},{b + 1})"]


def _point(rng):
    a, b = int(rng.integers(-9, 10)), int(rng.integers(-9, 10))
    return rf"\left( {a}, {b} \right)", [f"({a},{b})", f"({a}, {b})"], [f"({b},{a + 1})", f"({a},{b + 1})", str(a)]


def _polynomial(rng):
    r1, r2 = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    s, p = r1 + r2, r1 * r2
    correct = [f"x^2+{s}x+{p}", f"(x+{r1})(x+{r2})", f"x^2 + {s}x + {p}"]
    return f"x^2 + {s}x + {p}", correct, [f"x^2+{s}x-{p}", f"(x-{r1})(x-{r2})", f"x^2+{p}x+{s}"]


def _degrees(rng):
    n = int(rng.integers(10, 180))
    return f"{n}^\\circ", [str(n), f"{n}^{{\\circ}}", f"{n}^\\circ"], [str(n + 10), str(180 - n + 1), f"{n + 5}^\\circ"]


def _percent(rng):
    n = int(rng.integers(1, 100))
    return f"{n}\\%", [f"{n}\\%", str(n), f"{n / 100:g}"], [f"{n + 1}\\%", str(n + 7)]


def _solutions(rng):
    a, b = int(rng.integers(-9, 0)), int(rng.integers(1, 10))
    return f"{a}, {b}", [f"{b}, {a}", f"{a},{b}", rf"\{{{a}, {b}\}}"], [str(b), f"{-a}, {b}", f"{a}, {b + 1}"]


def _vector(rng):
    a, b = int(rng.integers(-9, 10)), int(rng.integers(-9, 10))
    gold = rf"\begin{{pmatrix}} {a} \\ {b} \end{{pmatrix}}"
    correct = [rf"\begin{{pmatrix}}{a}\\{b}\end{{pmatrix}}", f"\\begin{{pmatrix}}\n{a} \\\\\n{b}\n\\end{{pmatrix}}"]
    return gold, correct, [rf"\begin{{pmatrix}} {b} \\ {a} \end{{pmatrix}}", f"({a}, {b + 1})"]


def _choice(rng):
    letter = str(rng.choice(list(LETTERS)))
    others = [c for c in LETTERS if c != letter]
    return rf"\text{{({letter})}}", [letter, f"({letter})", rf"\text{{({letter})}}"], others[:3]


def _name(rng):
    name = str(rng.choice(["Evelyn", "Devon", "Tina", "Marcus"]))
    return rf"\text{{{name}}}", [name, rf"\text{{{name}}}"], ["Anna", "Bob"]


# Weights roughly follow MATH500's answer types: mostly integers and fractions.
KINDS = [(_integer, 0.40), (_fraction, 0.15), (_radical, 0.08), (_pi, 0.05), (_interval, 0.05), (_point, 0.05),
         (_polynomial, 0.04), (_degrees, 0.03), (_percent, 0.03), (_solutions, 0.04), (_vector, 0.03),
         (_choice, 0.03), (_name, 0.02)]


def make_problem(rng) -> tuple[str, list[str], np.ndarray]:
    """A gold answer, its distinct candidate answers and their Zipf-like sampling probabilities."""
    makers, weights = zip(*KINDS)
    gold, correct, wrong = makers[rng.choice(len(makers), p=np.array(weights) / sum(weights))](rng)
    n_candidates = int(rng.integers(2, 11))
    n_correct = min(len(correct), int(rng.integers(1, 4)))
    n_garbage = max(0, min(int(rng.binomial(3, 0.25)), n_candidates - n_correct))
    candidates = list(rng.choice(correct, n_correct, replace=False))
    candidates += list(rng.choice(UNPARSEABLE, n_garbage, replace=False))
    candidates += list(rng.choice(wrong, min(len(wrong), max(0, n_candidates - len(candidates))), replace=False))
    rng.shuffle(candidates)  # whether the most frequent answer is right is up to chance, as with a real model
    ranks = np.arange(1, len(candidates) + 1)
    weights = 1.0 / ranks**1.2
    return gold, [str(c) for c in candidates], weights / weights.sum()


def make_workload(n_problems: int, n_samples: int, seed: int) -> list[list[tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    problems = []
    for _ in range(n_problems):
        gold, candidates, probs = make_problem(rng)
        picks = rng.choice(len(candidates), size=n_samples, p=probs)
        problems.append([(candidates[i], gold) for i in picks])
    return problems


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def naive(pairs):
    return [mv.judge(answer, gold) is True for answer, gold in pairs]


def dedup_only(pairs):
    verdicts = {pair: mv.judge(*pair) is True for pair in dict.fromkeys(pairs)}
    return [verdicts[pair] for pair in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--naive-problems", type=int, default=20, help="problems the naive run checks (0: all)")
    parser.add_argument("--workers", type=int, default=mv.DEFAULT_WORKERS)
    parser.add_argument("--timeout", type=float, default=mv.DEFAULT_TIMEOUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # timeouts would be reported in STATS below

    problems = make_workload(args.problems, args.samples, args.seed)
    pairs = [pair for problem in problems for pair in problem]
    n_naive = args.naive_problems or args.problems
    naive_pairs = [pair for problem in problems[:n_naive] for pair in problem]
    print(f"workload: {args.problems} problems x {args.samples} samples = {len(pairs)} answers, "
          f"{len(set(pairs))} unique (answer, gold) pairs, "
          f"{np.mean([len(set(p)) for p in problems]):.1f} distinct answers per problem on average")

    naive_result, naive_s = timed(lambda: naive(naive_pairs))
    naive_full_s = naive_s * len(pairs) / len(naive_pairs)
    extrapolated = len(naive_pairs) < len(pairs)
    note = f" (measured on the first {n_naive} problems, {len(naive_pairs)} answers: {naive_s:.1f} s, " \
           f"extrapolated linearly)" if extrapolated else ""
    print(f"{'(a) naive, per sample, 1 process:':40} {naive_full_s:8.1f} s{note}")

    dedup_result, dedup_s = timed(lambda: dedup_only(pairs))
    print(f"{'(b) deduplicated, 1 process:':40} {dedup_s:8.1f} s")

    _, start_s = timed(lambda: mv.check("1", "1"))  # cold start of the shared workers
    fast_result, fast_s = timed(lambda: mv.verify_many(pairs, workers=args.workers, timeout=args.timeout))
    print(f"{f'(c) verify_many, {args.workers} worker processes:':40} {start_s + fast_s:8.1f} s "
          f"(worker start {start_s:.1f} s + {fast_s:.1f} s)")

    caveat = " (with (a) extrapolated)" if extrapolated else ""
    print(f"speed-up (a)/(c): {naive_full_s / (start_s + fast_s):.1f}x{caveat}; "
          f"(a)/(b) dedup alone: {naive_full_s / dedup_s:.1f}x; (b)/(c) workers: {dedup_s / (start_s + fast_s):.1f}x")
    agree_naive = sum(a == b for a, b in zip(naive_result, fast_result))
    agree_dedup = sum(a == b for a, b in zip(dedup_result, fast_result))
    print(f"agreement (c) vs (a): {agree_naive}/{len(naive_result)} answers; (c) vs (b): {agree_dedup}/{len(pairs)} "
          f"-> {'IDENTICAL' if agree_naive == len(naive_result) and agree_dedup == len(pairs) else 'DIFFERENT'}")
    print(f"accuracy of the samples: {np.mean(fast_result):.3f}; verifier events: {dict(mv.STATS) or 'none'}")


if __name__ == "__main__":
    main()
