ANALYSIS = f"{RESULTS}/analysis"


localrules:
    analyze,


rule analyze:
    """The study's answer: the paper's tables with intervals over seeds and problems, figures, the predictions with
    verdicts, a markdown summary and a self-contained report page; every table and figure goes into --report."""
    input:
        passk=all_probes("passk"),
        alignment=all_probes("alignment"),
        probe_metrics=all_probes("metrics"),
        scores=all_evaluations("scores"),
        samples=all_evaluations("samples"),
        train_metrics=all_training_logs(),
        data=all_problem_tables(),
    output:
        summary=f"{ANALYSIS}/summary.parquet",
        alignment=f"{ANALYSIS}/alignment.parquet",
        estimates=f"{ANALYSIS}/estimates.parquet",
        profiles=f"{ANALYSIS}/profiles.parquet",
        predictions=f"{ANALYSIS}/predictions.parquet",
        markdown=f"{ANALYSIS}/summary.md",
        page=f"{ANALYSIS}/report.html",
        predictions_table=report(
            f"{ANALYSIS}/tables/predictions.html",
            caption="../../src/mtarl/analysis/captions/predictions_table.rst",
            category="Predictions",
            labels={"item": "predictions and verdicts"},
        ),
        gain_passk=report(
            f"{ANALYSIS}/figures/alignment_gain_passk.png",
            caption="../../src/mtarl/analysis/captions/gain_passk.rst",
            category="Predictions",
            labels={"item": "gain vs base pass@k"},
        ),
        gain_majgap=report(
            f"{ANALYSIS}/figures/alignment_gain_majgap.png",
            caption="../../src/mtarl/analysis/captions/gain_majgap.rst",
            category="Predictions",
            labels={"item": "gain vs base maj@k - pass@1"},
        ),
        diagnostics=f"{ANALYSIS}/diagnostics.parquet",
        diagnostics_table=report(
            f"{ANALYSIS}/tables/diagnostics.html",
            caption="../../src/mtarl/analysis/captions/diagnostics_table.rst",
            category="Predictions",
            labels={"item": "mechanism diagnostics"},
        ),
        base_passk=report(
            f"{ANALYSIS}/passk.png",
            caption="../../src/mtarl/analysis/captions/base_passk.rst",
            category="Base models and alignment",
            labels={"item": "pass@k curves"},
        ),
        base_table=report(
            f"{ANALYSIS}/tables/base_models.html",
            caption="../../src/mtarl/analysis/captions/base_table.rst",
            category="Base models and alignment",
            labels={"item": "probe profiles and verdicts"},
        ),
        rq1_rewards=report(
            f"{ANALYSIS}/tables/rq1_rewards.html",
            caption="../../src/mtarl/analysis/captions/rq1_rewards.rst",
            category="RQ1 rewards",
            labels={"item": "reward signal"},
        ),
        self_rewards=report(
            f"{ANALYSIS}/tables/self_rewards.html",
            caption="../../src/mtarl/analysis/captions/self_rewards.rst",
            category="RQ1 rewards",
            labels={"item": "self-rewards"},
        ),
        passk_trained=report(
            f"{ANALYSIS}/figures/passk_trained.png",
            caption="../../src/mtarl/analysis/captions/passk_trained.rst",
            category="RQ1 rewards",
            labels={"item": "pass@k before and after training"},
        ),
        one_shot=report(
            f"{ANALYSIS}/tables/one_shot.html",
            caption="../../src/mtarl/analysis/captions/one_shot.rst",
            category="RQ2 one-shot",
            labels={"item": "one-shot RL"},
        ),
        rq3=report(
            f"{ANALYSIS}/tables/rq3.html",
            caption="../../src/mtarl/analysis/captions/rq3.rst",
            category="RQ3 negative/positive samples",
            labels={"item": "NSR, PSR, Zhu et al."},
        ),
        zhu_table=report(
            f"{ANALYSIS}/tables/zhu_vs_masked.html",
            caption="../../src/mtarl/analysis/captions/zhu_table.rst",
            category="RQ3 negative/positive samples",
            labels={"item": "Zhu et al. vs masked"},
        ),
        data_table=report(
            f"{ANALYSIS}/tables/data.html",
            caption="../../src/mtarl/analysis/captions/data_table.rst",
            category="Data",
            labels={"item": "problems per task split"},
        ),
        training=report(
            directory(f"{ANALYSIS}/training"),
            patterns=["{model}.{task}.png"],
            caption="../../src/mtarl/analysis/captions/training.rst",
            category="Training dynamics",
            labels={"model": "{model}", "task": "{task}"},
        ),
    log:
        "logs/analyze/analyze.log",
    benchmark:
        "benchmarks/analyze/analyze.tsv"
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    threads: 1
    params:
        code=code("analyze"),
        settings=analyze_settings,
        out=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "mtarl analyze --settings {params.settings:q} --passk {input.passk} --alignment {input.alignment} "
        "--probe-metrics {input.probe_metrics} --scores {input.scores} --samples {input.samples} "
        "--train-metrics {input.train_metrics} --data {input.data} --out {params.out} > {log} 2>&1"
