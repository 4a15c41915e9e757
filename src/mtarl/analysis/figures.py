"""The study's figures, in one matplotlib style (headless Agg backend): intervals are always drawn as bands or bars.

- ``base_passk``: the probe's pass@k curves of the base models, one panel per benchmark (the alignment measure);
- ``passk_trained``: pass@k of the base model and of every trained variant (mean over seeds), one panel per
  model x benchmark, on the evaluation protocol;
- ``training_curves``: one figure per model x task, one panel per curve of ``mtarl.analysis.training.CURVES``, one
  line per variant (mean over seeds, band from the lowest to the highest seed);
- ``alignment_gain``: gain per variant against a base-model measure (pass@k at the alignment k, or maj@k - pass@1),
  one marker per model x benchmark coloured by the three-way partition, with the gain's 95% interval.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # headless: no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from mtarl import io  # noqa: E402
from mtarl.alignment import PARTITION_COLOURS  # noqa: E402
from mtarl.analysis.cells import BASE  # noqa: E402
from mtarl.analysis.training import CURVES  # noqa: E402

STYLE = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "legend.fontsize": 7, "legend.frameon": False}
BAND_ALPHA = 0.15
PARTITION_LABELS = {"contaminated_strong": "contaminated, strong", "clean_strong": "clean, strong",
                    "clean_weak": "clean, weak", "contaminated_weak": "contaminated, weak"}


def save(fig, path: str, dpi: int) -> None:
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def grid(n_panels: int, ncols: int, size: tuple[float, float] = (3.6, 2.8)):
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def _colours(names: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab20")
    return {name: cmap(i % 20) for i, name in enumerate(names)}


def base_passk(probe_metrics: pl.DataFrame, path: str, dpi: int) -> None:
    """pass@k of the base models with bootstrap bands, one panel per benchmark."""
    curves = probe_metrics.filter(pl.col("metric") == "pass@k")
    panels = curves.select("task", "benchmark").unique().sort("task", "benchmark").rows()
    colours = _colours(curves["model"].unique().sort().to_list())
    with plt.rc_context(STYLE):
        fig, axes = grid(len(panels), 4)
        for ax, (task, benchmark) in zip(axes, panels):
            for model, colour in colours.items():
                c = curves.filter(pl.col("task") == task, pl.col("benchmark") == benchmark,
                                  pl.col("model") == model).sort("k")
                if c.is_empty():
                    continue
                ax.plot(c["k"], c["value"], marker="o", ms=3, color=colour, label=model)
                ax.fill_between(c["k"], c["ci_low"], c["ci_high"], color=colour, alpha=BAND_ALPHA)
            _passk_axes(ax, benchmark if benchmark == task else f"{task} / {benchmark}")
            ax.legend()
        save(fig, path, dpi)


def _passk_axes(ax, title: str) -> None:
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    ax.set_title(title)


def passk_trained(curves: pl.DataFrame, path: str, dpi: int) -> None:
    """Base vs trained pass@k, one panel per model x benchmark (``curves`` from ``cells.passk_curves``)."""
    panels = curves.select("model", "task", "benchmark").unique().sort("model", "task", "benchmark").rows()
    variants = [BASE, *sorted(set(curves["variant"]) - {BASE})]
    colours = _colours(variants)
    with plt.rc_context(STYLE):
        fig, axes = grid(len(panels), 4)
        for ax, (model, task, benchmark) in zip(axes, panels):
            for variant in variants:
                c = curves.filter(pl.col("model") == model, pl.col("task") == task,
                                  pl.col("benchmark") == benchmark, pl.col("variant") == variant).sort("k")
                if c.is_empty():
                    continue
                style = {"color": "black", "lw": 2.0} if variant == BASE else {"color": colours[variant], "lw": 1.0}
                ax.plot(c["k"], c["value"], label=variant, **style)
                ax.fill_between(c["k"], c["low"], c["high"], color=style["color"], alpha=BAND_ALPHA)
            _passk_axes(ax, f"{model} on {benchmark}")
        axes[0].legend(ncols=2)
        save(fig, path, dpi)


def training_curves(logs: pl.DataFrame, model: str, task: str, path: str, dpi: int) -> None:
    """Every logged curve of the runs of one model x task: mean over seeds, band from the lowest to highest seed."""
    runs = logs.filter(pl.col("model") == model, pl.col("task") == task)
    variants = runs["variant"].unique().sort().to_list()
    colours = _colours(variants)
    with plt.rc_context(STYLE):
        fig, axes = grid(len(CURVES), 3, size=(4.0, 2.8))
        for ax, (curve, label) in zip(axes, CURVES.items()):
            per_step = (runs.filter(pl.col(curve).is_not_null())
                        .group_by("variant", "step")
                        .agg(mean=pl.col(curve).mean(), low=pl.col(curve).min(), high=pl.col(curve).max())
                        .sort("variant", "step"))
            for variant in variants:
                c = per_step.filter(pl.col("variant") == variant)
                if c.is_empty():
                    continue
                ax.plot(c["step"], c["mean"], color=colours[variant], lw=1.0, label=variant)
                ax.fill_between(c["step"], c["low"], c["high"], color=colours[variant], alpha=BAND_ALPHA)
            if per_step.is_empty():
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(label)
            ax.set_xlabel("optimizer step")
        axes[0].legend(ncols=2)
        fig.suptitle(f"{model} on {task}: training curves (mean over seeds; band: lowest to highest seed)")
        save(fig, path, dpi)


def alignment_gain(estimates: pl.DataFrame, profiles: pl.DataFrame, measure: str, label: str, path: str,
                   dpi: int) -> None:
    """Gain per variant against a base-model measure; markers coloured by partition, bars = 95% interval."""
    keys = ["model", "task", "benchmark"]
    data = estimates.filter(pl.col("variant") != BASE).join(profiles, on=keys, how="left")
    variants = data["variant"].unique().sort().to_list()
    with plt.rc_context(STYLE):
        fig, axes = grid(max(1, len(variants)), 4, size=(3.2, 2.6))
        for ax, variant in zip(axes, variants):
            points = data.filter(pl.col("variant") == variant)
            for row in points.iter_rows(named=True):
                colour = PARTITION_COLOURS.get(row["partition"] or "", "tab:blue")
                x = row[measure]
                if x is None:
                    continue
                ax.errorbar(x, row["gain"], yerr=[[row["gain"] - row["gain_low"]], [row["gain_high"] - row["gain"]]],
                            fmt="o", ms=4, color=colour, capsize=2)
                ax.annotate(f"{row['model']}/{row['benchmark']}", (x, row["gain"]), fontsize=6,
                            textcoords="offset points", xytext=(3, 3))
            ax.axhline(0.0, color="black", lw=0.6)
            ax.set_title(variant)
            ax.set_xlabel(label)
            ax.set_ylabel("gain (trained - base)")
        handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=PARTITION_LABELS[p])
                   for p, c in PARTITION_COLOURS.items()]
        fig.legend(handles=handles, loc="lower right", fontsize=7)
        save(fig, path, dpi)
