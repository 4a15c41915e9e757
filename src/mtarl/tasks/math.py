"""The math verifier of the paper configuration (study.md 6.3, pitfall P8): math-verify equivalence, hang-proof.

Registers the task family ``math``. An extracted answer is correct iff ``verify(parse(gold), parse(answer))``
(math-verify 0.9, gold first, libraries.md 3); ``method="exact"`` keeps the official code's exact string match
(after stripping) for ablations.

Public API:
- ``is_correct(completion, gold)``: a full model output against the gold answer (last ``<answer>`` block;
  no block -> False; the format gate is ``tasks.has_format``, applied elsewhere);
- ``check(answer, gold, method=...)``: the registered checker (extracted answer vs gold);
- ``verify_many(pairs, workers, timeout)``: (extracted answer, gold) pairs in bulk: identical pairs are verified once,
  the unique ones in parallel worker processes;
- ``gold_scorable_many(golds)``: whether math-verify parses each gold answer (cached per process);
- ``judge(answer, gold)``: one check in this process, ``None`` for an unscorable gold; *not* hang-proof.

Before parsing, a bare answer is wrapped in ``$...$`` (math-verify finds nothing in a bare ``\\frac12``); text that
already has ``$``, ``\\(``, ``\\[`` or ``\\boxed`` is passed as is (math-verify extracts a ``\\boxed{}`` itself).

Unscorable gold answers (math-verify parses nothing out of them): ``gold_scorable_many`` finds them, and
``tasks.verify_batch`` gives every answer to such a problem ``accurate = None``: no reward (zero advantage) and no
place in the metrics, rather than "wrong" (which would make the incorrect reward a format reward on them and let
zhu_nsr punish every sample). A check that still meets one (``check``, ``verify_many``) returns False; the gold is
counted in ``STATS["unparseable_gold"]``, kept in ``UNPARSEABLE_GOLDS`` and logged once as a warning.

Why processes: math-verify's timeouts use SIGALRM, which works only in a process's main thread (not in TRL's reward
threads, not in a thread pool), and sympy spends minutes on inputs such as ``9^{9^{9}}`` or ``(10^{7})!`` (both still
running after 30 s without a timeout). A signal is only handled between Python bytecodes, so one long C call (big
integer arithmetic, a regex) delays it, and a process can die of the input (memory, recursion). So every math-verify
check runs in a worker process (its own main thread), under two deadlines:
- a soft one inside the worker: an interval timer raises at ``timeout`` seconds and the answer counts as False;
- a hard one outside: a worker still silent at ``timeout + grace`` is killed and replaced, the answer is False;
a worker that dies on an input is replaced too (the answer is False). A worker may map at most 4 GiB more than at start.
The workers stay up between calls (a pool per process, started on first use, about 1 s), so a single call costs one
round trip (well under a millisecond) plus the check itself.

Run the tests: ``.venv/bin/pytest tests/test_math_verify.py``; the benchmark: ``.venv/bin/python bench/math_verify.py``.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from functools import lru_cache
from multiprocessing.connection import Connection, wait
from pathlib import Path

from mtarl import tasks

log = logging.getLogger(__name__)

METHODS = ("math_verify", "exact")
DEFAULT_TIMEOUT = 5.0  # seconds per unique (answer, gold) check; math-verify's own default per step
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
DEFAULT_WORKERS = max(1, min(8, _CPUS))
# Address space a worker may add to what it maps at start: a runaway power tower then fails with MemoryError
# (-> False) instead of eating the machine.
MEMORY_HEADROOM_BYTES = 4 * 2**30
START_TIMEOUT = 120.0  # seconds for a new worker to import math-verify and report ready

# What one check can come to besides True / False; all of them count as False.
NO_GOLD, TIMED_OUT, CRASHED = "no_gold", "timed_out", "crashed"

# Counters of this process: unparseable_gold, timed_out, crashed, worker_restarts.
STATS: Counter[str] = Counter()
UNPARSEABLE_GOLDS: set[str] = set()

# An answer that already says where its math is; `\$` (an escaped dollar sign, "\$18.90") does not count.
_DELIMITED_RE = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed")
_LINE_BREAK_RE = re.compile(r"\s*\n\s*")


# ---------------------------------------------------------------------------------------------------------------
# One check, in whatever process runs it


def delimit(text: str) -> str:
    """``text`` on one line, stripped, wrapped in ``$...$`` unless it is empty or already delimited (or boxed).

    Line breaks become spaces (as in LaTeX): math-verify's ``$...$`` and ``\\[...\\]`` patterns stop at a newline,
    so a multi-line ``\\frac{1}{2}\\n+ 1`` would otherwise be read as its last line, ``1``, and a multi-line
    ``pmatrix`` as its last entry.
    """
    text = _LINE_BREAK_RE.sub(" ", text.strip())
    if not text or _DELIMITED_RE.search(text):
        return text
    return f"${text}$"


def exact_match(answer: str, gold: str) -> bool:
    """The official verifier: string equality; stripping is the only normalisation."""
    return answer.strip() == gold.strip()


def judge(answer: str, gold: str) -> bool | None:
    """math-verify equivalence in this process, with math-verify's own (SIGALRM) timeouts; None if gold is unscorable.

    Not hang-proof (a timeout inside a long C call is not delivered) and main-thread only: use ``check`` or
    ``verify_many`` unless you run your own isolation. The benchmark uses it as the naive per-sample baseline.
    """
    from math_verify import parse, verify

    gold_parsed = parse(delimit(gold))
    if not gold_parsed:
        return None
    return verify(gold_parsed, parse(delimit(answer)))


class _Deadline(BaseException):
    """Raised by the worker's interval timer. A BaseException, so math-verify's `except Exception` cannot swallow it
    and go on to its next (possibly as slow) comparison."""


def _raise_deadline(signum, frame):
    raise _Deadline()


@lru_cache(maxsize=16384)
def _parse_cached(text: str) -> tuple:
    """math-verify's parse of ``delimit(text)``, cached: a problem's gold answer is parsed once per worker, not once
    per distinct answer. The outer timer replaces math-verify's timeouts (two alarms would cancel each other)."""
    from math_verify import parse

    return tuple(parse(delimit(text), parsing_timeout=None))


def _judge_in_worker(answer: str, gold: str) -> bool | str:
    from math_verify import verify

    gold_parsed = _parse_cached(gold)
    if not gold_parsed:
        return NO_GOLD
    return bool(verify(list(gold_parsed), list(_parse_cached(answer)), timeout_seconds=None))


def _judge_with_deadline(answer: str, gold: str, timeout: float) -> bool | str:
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return _judge_in_worker(answer, gold)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Deadline:
        return TIMED_OUT


def _limit_memory(headroom_bytes: int) -> None:
    """Cap the address space at what is mapped now plus ``headroom_bytes`` (relative, so that a large baseline,
    e.g. an environment that maps big libraries at import, never starts below the cap). Linux only; 0: no cap."""
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    if headroom_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (mapped + headroom_bytes, mapped + headroom_bytes))


def _worker_main(inbox_fd: int, outbox_fd: int, memory_headroom: int) -> None:
    """A worker: says "ready", then answers each (answer, gold, timeout) job until None or the parent goes away."""
    inbox, outbox = Connection(inbox_fd, writable=False), Connection(outbox_fd, readable=False)
    signal.signal(signal.SIGALRM, _raise_deadline)
    # Silences "Timeout is disabled ..." (the timer here replaces it) and per-input parse chatter.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    import math_verify  # noqa: F401  (imported before "ready", so no job's deadline pays for it)

    _limit_memory(memory_headroom)

    outbox.send("ready")
    while True:
        try:
            job = inbox.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        outbox.send(_judge_with_deadline(*job))


# ---------------------------------------------------------------------------------------------------------------
# The pool: long-lived workers, one job in flight each, a hard deadline per job

# Workers are fresh interpreters started with subprocess rather than multiprocessing: its spawn and forkserver
# methods re-run the caller's __main__ in every worker (which breaks scripts without a main guard), and fork would
# copy the caller's threads (torch, TRL) mid-state.
_WORKER_BOOT = "import sys; from mtarl.tasks.math import _worker_main; _worker_main(*map(int, sys.argv[1:4]))"
_SRC = str(Path(__file__).resolve().parents[2])  # the directory holding the mtarl package being run


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, env.get("PYTHONPATH")) if p)
    return env


class _Worker:
    def __init__(self, memory_headroom: int):
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT, str(to_worker_r), str(from_worker_w), str(memory_headroom)],
            pass_fds=(to_worker_r, from_worker_w), env=_worker_env(), stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to the parent only; the workers end when their pipe closes
        )
        os.close(to_worker_r)  # the worker's ends: closed here so that the worker's death reads as EOF
        os.close(from_worker_w)
        self.outbox = Connection(to_worker_w, readable=False)
        self.inbox = Connection(from_worker_r, writable=False)
        self.ready = False
        self.job: int | None = None
        self.deadline = time.monotonic() + START_TIMEOUT

    @property
    def busy(self) -> bool:
        return self.job is not None

    @property
    def exit_code(self) -> int | None:
        return self.process.poll()

    def stop(self, kill: bool) -> None:
        if not kill:
            try:
                self.outbox.send(None)
                self.process.wait(timeout=1.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL: a worker stuck in C code ignores anything softer
            self.process.wait()
        self.outbox.close()
        self.inbox.close()


class VerifierPool:
    """``workers`` processes that run math-verify checks; ``map`` gives one outcome per job, never hangs."""

    def __init__(self, workers: int = DEFAULT_WORKERS, memory_headroom: int = MEMORY_HEADROOM_BYTES):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.memory_headroom = memory_headroom
        self.owner = os.getpid()
        self.workers = [_Worker(memory_headroom) for _ in range(workers)]

    @property
    def size(self) -> int:
        return len(self.workers)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers]

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(kill=False)
        self.workers = []

    def _replace(self, index: int) -> None:
        self.workers[index].stop(kill=True)
        self.workers[index] = _Worker(self.memory_headroom)
        STATS["worker_restarts"] += 1

    def map(self, jobs: list[tuple[str, str]], timeout: float = DEFAULT_TIMEOUT) -> list[bool | str]:
        """The outcome of each (answer, gold) job: True, False, NO_GOLD, TIMED_OUT or CRASHED."""
        hard_timeout = timeout + max(0.5, 0.25 * timeout)  # the worker's own timer gets the first chance
        outcomes: list[bool | str] = [CRASHED] * len(jobs)
        todo = deque(range(len(jobs)))
        try:
            while todo or any(w.busy for w in self.workers):
                self._dispatch(jobs, todo, timeout, hard_timeout)
                self._collect(outcomes)
                self._enforce_deadlines(outcomes)
        except BaseException:  # Ctrl-C, or a worker that cannot start
            self._abandon_jobs()
            raise
        return outcomes

    def _abandon_jobs(self) -> None:
        """Replace the workers still busy: their late answers must not land in the next call's results."""
        for index, worker in enumerate(self.workers):
            if worker.busy:
                self._replace(index)

    def _dispatch(self, jobs, todo: deque, timeout: float, hard_timeout: float) -> None:
        for index, worker in enumerate(self.workers):
            if worker.ready and not worker.busy and todo:
                job = todo.popleft()
                try:
                    worker.outbox.send((*jobs[job], timeout))
                except OSError:  # the worker died between jobs: the job was never seen, so give it to another
                    todo.appendleft(job)
                    self._replace(index)
                    continue
                worker.job, worker.deadline = job, time.monotonic() + hard_timeout

    def _collect(self, outcomes: list) -> None:
        waiting = [w for w in self.workers if w.busy or not w.ready]
        if not waiting:
            return
        wait_s = max(0.0, min(w.deadline for w in waiting) - time.monotonic())
        ready = set(wait([w.inbox for w in waiting], timeout=wait_s))
        for index, worker in enumerate(self.workers):
            if worker.inbox not in ready:
                continue
            try:
                message = worker.inbox.recv()
            except (EOFError, OSError):
                self._on_crash(index, outcomes)
                continue
            if not worker.ready:
                worker.ready, worker.deadline = True, float("inf")
            else:
                outcomes[worker.job] = message
                worker.job, worker.deadline = None, float("inf")

    def _on_crash(self, index: int, outcomes: list) -> None:
        worker = self.workers[index]
        if not worker.ready:
            raise RuntimeError(f"a math-verify worker died while starting (exit code {worker.exit_code}); "
                               "its traceback is on stderr")
        STATS[CRASHED] += 1
        log.warning("math-verify worker died (exit code %s) on one answer; counted as False", worker.exit_code)
        outcomes[worker.job] = CRASHED
        self._replace(index)

    def _enforce_deadlines(self, outcomes: list) -> None:
        now = time.monotonic()
        for index, worker in enumerate(self.workers):
            if worker.deadline > now:
                continue
            if not worker.ready:
                raise RuntimeError(f"a math-verify worker did not start within {START_TIMEOUT:.0f} s")
            outcomes[worker.job] = TIMED_OUT
            self._replace(index)


# One pool per process, made on first use; a forked child makes its own instead of sharing its parent's pipes.
_POOL: VerifierPool | None = None
_POOL_LOCK = threading.Lock()


def _pool(workers: int | None) -> VerifierPool:
    global _POOL
    stale = _POOL is None or _POOL.owner != os.getpid()
    if stale or (workers is not None and _POOL.size != workers):
        if not stale:
            _POOL.close()
        _POOL = VerifierPool(workers or DEFAULT_WORKERS)
    return _POOL


@atexit.register
def shutdown() -> None:
    """Stop this process's workers (also run at exit)."""
    global _POOL
    if _POOL is not None and _POOL.owner == os.getpid():
        _POOL.close()
    _POOL = None


# ---------------------------------------------------------------------------------------------------------------
# Public API


def _as_bool(outcome: bool | str, answer: str, gold: str) -> bool:
    """Count and report what is not a plain verdict; everything but True is False."""
    if outcome is True or outcome is False:
        return outcome
    if outcome == NO_GOLD:
        STATS["unparseable_gold"] += 1
        if gold not in UNPARSEABLE_GOLDS:
            UNPARSEABLE_GOLDS.add(gold)
            log.warning("math-verify parses nothing in the gold answer %r: its problem is left unscored", gold)
    elif outcome == TIMED_OUT:
        STATS[TIMED_OUT] += 1
        log.warning("math-verify timed out on answer %r (gold %r); counted as False", answer[:200], gold[:200])
    return False


def verify_many(pairs: list[tuple[str, str]], workers: int = DEFAULT_WORKERS, timeout: float = DEFAULT_TIMEOUT,
                method: str = "math_verify") -> list[bool]:
    """Whether each (extracted answer, gold) pair is equivalent. Identical pairs are checked once; the unique ones run
    in ``workers`` processes, each with ``timeout`` seconds (then False: a stuck worker is replaced, the batch goes on).
    An answer of None (the completion had no ``<answer>`` block) is False.
    """
    if method not in METHODS:
        raise ValueError(f"unknown math verifier {method!r}; choose one of {METHODS}")
    # Stripped: delimit() strips anyway, so " 5" and "5" are one check.
    keys = [None if answer is None else (answer.strip(), gold.strip()) for answer, gold in pairs]
    if method == "exact":
        return [key is not None and exact_match(*key) for key in keys]
    unique = list(dict.fromkeys(key for key in keys if key is not None))
    with _POOL_LOCK:
        outcomes = _pool(workers).map(unique, timeout) if unique else []
    verdicts = {key: _as_bool(outcome, *key) for key, outcome in zip(unique, outcomes)}
    return [key is not None and verdicts[key] for key in keys]


_GOLD_SCORABLE: dict[str, bool] = {}  # per stripped gold, this process's verdict of gold_scorable_many


def gold_scorable_many(golds: list[str], workers: int = DEFAULT_WORKERS,
                       timeout: float = DEFAULT_TIMEOUT) -> list[bool]:
    """Whether math-verify parses something out of each gold answer (a gold checked against itself in the workers:
    NO_GOLD means unscorable; a timeout or crash counts as scorable, so only a gold that parses to nothing is left
    out). Each distinct gold is checked once per process."""
    keys = [gold.strip() for gold in golds]
    unknown = [key for key in dict.fromkeys(keys) if key not in _GOLD_SCORABLE]
    if unknown:
        with _POOL_LOCK:
            outcomes = _pool(workers).map([(key, key) for key in unknown], timeout)
        for key, outcome in zip(unknown, outcomes):
            _GOLD_SCORABLE[key] = outcome != NO_GOLD
            if outcome == NO_GOLD:
                _as_bool(outcome, key, key)  # counted and logged once
    return [_GOLD_SCORABLE[key] for key in keys]


def check(answer: str, gold: str, method: str = "math_verify", timeout: float = DEFAULT_TIMEOUT) -> bool:
    """The checker of family ``math``: the extracted ``answer`` against ``gold`` (``method``: math_verify | exact)."""
    if method not in METHODS:
        raise ValueError(f"unknown math verifier {method!r}; choose one of {METHODS}")
    if method == "exact":
        return exact_match(answer, gold)
    with _POOL_LOCK:
        outcome = _pool(None).map([(answer.strip(), gold.strip())], timeout)[0]
    return _as_bool(outcome, answer, gold)


def is_correct(completion: str, gold: str) -> bool:
    """True iff the last ``<answer>`` block of ``completion`` is equivalent to ``gold`` (math-verify; no block: False).
    """
    answer = tasks.extract_answer(completion)
    return answer is not None and check(answer, gold)


tasks.register("math", check)
