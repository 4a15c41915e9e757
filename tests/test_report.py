"""The study's report as a person reads it: `snakemake --report` and the static page, opened in headless Chromium.

Builds the Snakemake report of the smoke study, clicks through every item of every category, and opens the static
page; every figure must be an image that loaded, every table a document, and the predictions table must be there.
Screenshots are kept in ``results/test-artifacts/report/`` of the repository (ignored by git) for a person to look at.
"""

from __future__ import annotations

import os
import shutil

import pytest
from browser import chromium, snakemake_report_items, static_page_images
from conftest import REPO, run_snakemake

CATEGORIES = ["Predictions", "Base models and alignment", "Data", "RQ1 rewards", "RQ2 one-shot",
              "RQ3 negative/positive samples", "Training dynamics"]
ARTIFACTS = REPO / "results" / "test-artifacts" / "report"


@pytest.fixture(scope="module")
def browser_available():
    if chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run installs it (infra/install-chromium.sh)")
        pytest.skip("needs Debian's chromium: bash infra/install-chromium.sh")


@pytest.fixture(scope="module")
def artifacts():
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def test_snakemake_report_shows_every_figure_and_table(smoke_study, browser_available, artifacts):
    workdir, _ = smoke_study
    report = workdir / "report.html"
    result = run_snakemake(workdir, "--configfile", str(REPO / "config/smoke.yaml"), "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]

    shown = snakemake_report_items(report, CATEGORIES, artifacts)
    kinds = {category: sorted(item["kind"] for item in items) for category, items in shown.items()}
    assert kinds == {
        "Predictions": ["html", "html", "image", "image"],  # predictions, diagnostics
        "Base models and alignment": ["html", "image"],
        "Data": ["html"],
        "RQ1 rewards": ["html", "html", "image"],
        "RQ2 one-shot": ["html"],
        "RQ3 negative/positive samples": ["html", "html"],
        "Training dynamics": ["image"] * 3,  # one per cell: aligned/add3, weak/add3, weak_mul2/mul2
    }
    not_loaded = [(c, i) for c, items in shown.items() for i, item in enumerate(items) if not item["loaded"]]
    assert not not_loaded, f"items that did not load: {not_loaded}"
    documents = [item["document"] for item in shown["Predictions"] if item["kind"] == "html"]
    predictions = next(d for d in documents if 'id="predictions"' in d)
    assert "P10" in predictions
    assert any("format_rate_start" in d and "clip_percent_mean" in d for d in documents), "no diagnostics table"


def test_static_page_shows_every_figure_and_the_predictions(smoke_study, browser_available, artifacts):
    workdir, _ = smoke_study
    images, text = static_page_images(workdir / "results/analysis/report.html", artifacts / "static-page.png")
    assert len(images) == 4 + 3  # 4 study figures + one training figure per cell
    assert all(image["loaded"] for image in images), images
    assert "Predictions and verdicts" in text and "Ground-truth RL helps every model x task cell" in text
    assert (artifacts / "static-page.png").stat().st_size > 10_000
