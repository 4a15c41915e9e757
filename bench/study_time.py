"""Where a finished study's time went: per rule, jobs and wall time, split into process start-up + imports and work.

Reads the per-job wall times Snakemake wrote (``benchmarks/<rule>/**.tsv``, column ``s``) and
the run's log (``.snakemake/log/*.log``: first and last timestamps = the study's wall time), then measures, in fresh
processes on this machine, what starting each stage costs before it does any work: ``python -c "import mtarl.<stage>"``
(the package's and its libraries' imports), best of ``--repeats``. Start-up x jobs is the overhead a rule pays; the
rest of its job time is work. Jobs run side by side (``--cores``), so per-rule sums exceed the wall time. The files'
``cpu_time`` is not used: Snakemake samples it every 0.5 s for a job's first 15 s, then every 30 s, and keeps the
last sample, so it misses up to 30 s of each job (a 40-s job reads about 15 s).

With ``--baseline OTHER_RUN`` it also measures how fast the machine was, from the jobs that did the same work in
both runs: pretrain and train jobs whose outputs are equal but for their timings (``curve.parquet``; each run's
``metrics.jsonl``). Their summed job time here over there is the speed ratio, and the wall time divided by it is
this study's time at the baseline's speed: on a shared VM the same jobs ran 1.35 times slower in one session than in
another (README, *What to expect*).

Run after a study: ``.venv/bin/python bench/study_time.py [--workdir .] [--repeats 3] [--baseline OTHER_RUN]``
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

# rule -> the mtarl module its command imports
STAGE_OF_RULE = {"prepare": "prepare", "pretrain": "pretrain", "probe_shard": "probe_shard", "probe": "probe",
                 "train": "train", "evaluate": "evaluate", "analyze": "analyze"}


def benchmark_row(tsv: Path) -> dict[str, str]:
    """The one row of a job's Snakemake benchmark file (``s``: wall seconds, ...)."""
    with tsv.open() as f:
        return next(csv.DictReader(f, delimiter="\t"))


def job_times(workdir: Path) -> dict[str, list[float]]:
    """Per rule: the wall seconds of every job's benchmark file."""
    times: dict[str, list[float]] = {}
    for tsv in sorted((workdir / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(workdir / "benchmarks").parts[0]
        if rule == "probe" and tsv.stem.startswith("shard"):  # probe_shard and probe share benchmarks/probe/
            rule = "probe_shard"
        times.setdefault(rule, []).append(float(benchmark_row(tsv)["s"]))
    return times


def study_wall_time(workdir: Path) -> tuple[float, Path] | None:
    """Seconds from the first to the last timestamp of the Snakemake log that finished the most jobs (the study
    itself, not a later partial rerun), and that log."""
    stamp = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]", re.MULTILINE)
    logs = [(log.read_text(), log) for log in (workdir / ".snakemake" / "log").glob("*.log")]
    if not logs:
        return None
    text, log = max(logs, key=lambda pair: pair[0].count("Finished jobid"))
    found = stamp.findall(text)
    if len(found) < 2:
        return None
    first, last = (datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in (found[0], found[-1]))
    return (last - first).total_seconds(), log


TIMING_KEYS = {"time", "step_time", "seconds", "elapsed_s"}  # what may differ between two runs of the same work


def job_outputs(workdir: Path, tsv: Path) -> list[Path]:
    """The outputs that show what a pretrain or train job computed: the pretraining curve, or each run's training log
    (a train job is ``<variant>`` for all its seeds under batch_seeds, else ``<variant>-s<seed>``)."""
    rule, *rest = tsv.relative_to(workdir / "benchmarks").with_suffix("").parts
    if rule == "pretrain":
        return [workdir / "results/models" / rest[0] / "curve.parquet"]
    model, task, job = rest
    runs = workdir / "results/train" / model / task
    return sorted(runs.glob(f"{job}-s*/metrics.jsonl")) or [runs / job / "metrics.jsonl"]


def without_timings(path: Path):
    """A job output's content, timings left out: a table's other columns, or a JSONL log's records."""
    import json

    import polars as pl

    if path.suffix == ".parquet":
        table = pl.read_parquet(path)
        return table.select([c for c in table.columns if c not in TIMING_KEYS]).rows()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in records]


def same_work(mine: list[Path], theirs: list[Path]) -> bool:
    """Whether two jobs' outputs (the same runs, in order) are equal once their timings are left out."""
    if [p.parent.name for p in mine] != [p.parent.name for p in theirs] or not all(p.exists() for p in mine + theirs):
        return False
    return all(without_timings(a) == without_timings(b) for a, b in zip(mine, theirs))


def speed_ratio(workdir: Path, baseline: Path) -> tuple[float, int, float, float]:
    """(job time here / there, matched jobs, seconds here, seconds there) over the pretrain and train jobs that did
    the same work in both runs."""
    here = there = 0.0
    matched = 0
    for rule in ("pretrain", "train"):
        for tsv in sorted((workdir / "benchmarks" / rule).rglob("*.tsv")):
            other = baseline / tsv.relative_to(workdir)
            if other.exists() and same_work(job_outputs(workdir, tsv), job_outputs(baseline, other)):
                here += float(benchmark_row(tsv)["s"])
                there += float(benchmark_row(other)["s"])
                matched += 1
    return (here / there if there else float("nan")), matched, here, there


def startup_seconds(module: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import mtarl.cli, mtarl.{module}"], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."), help="the study's working directory")
    parser.add_argument("--repeats", type=int, default=3, help="start-up measurements per stage (best is kept)")
    parser.add_argument("--baseline", type=Path, help="another study's working directory, to compare machine speed")
    args = parser.parse_args()

    times = job_times(args.workdir)
    if not times:
        sys.exit(f"no benchmarks/ under {args.workdir}: run a study first")
    wall = study_wall_time(args.workdir)
    print(f"study wall time: {wall[0]:.0f} s ({wall[1].name})" if wall else "study wall time: no Snakemake log found")
    header = f"{'rule':<12} {'jobs':>5} {'wall s':>9} {'mean s':>8} {'start-up s':>11} {'overhead':>9}"
    print(header)
    print("-" * len(header))
    total_wall = total_overhead = 0.0
    for rule, jobs in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        job_wall = sum(jobs)
        startup = startup_seconds(STAGE_OF_RULE[rule], args.repeats) if rule in STAGE_OF_RULE else 0.0
        overhead = startup * len(jobs)
        total_wall, total_overhead = total_wall + job_wall, total_overhead + overhead
        print(f"{rule:<12} {len(jobs):>5} {job_wall:>9.0f} {job_wall / len(jobs):>8.1f} {startup:>11.2f} "
              f"{overhead / job_wall:>8.0%}")
    print("-" * len(header))
    print(f"{'all jobs':<12} {sum(len(j) for j in times.values()):>5} {total_wall:>9.0f}"
          f"{'':>9}{'':>12} {total_overhead / total_wall:>8.0%}")
    print("start-up: best of fresh `python -c 'import mtarl.cli, mtarl.<stage>'`; overhead = start-up x jobs / "
          "job wall time")
    if args.baseline:
        ratio, matched, here, there = speed_ratio(args.workdir, args.baseline)
        print(f"speed: {matched} pretrain/train jobs did the same work as in {args.baseline}: {here:.0f} job s here, "
              f"{there:.0f} there, ratio {ratio:.3f}")
        if wall and matched:
            print(f"study wall time at the baseline's speed: {wall[0] / ratio:.0f} s")


if __name__ == "__main__":
    main()
