rule analyze:
    """Aggregate probes and evaluations into the summary table, the pass@k figure and a report."""
    input:
        passk=all_probes("passk"),
        alignment=all_probes("alignment"),
        scores=all_scores(),
    output:
        summary=f"{RESULTS}/analysis/summary.parquet",
        alignment=f"{RESULTS}/analysis/alignment.parquet",
        figure=f"{RESULTS}/analysis/passk.png",
        report=f"{RESULTS}/analysis/summary.md",
    log:
        "logs/analyze/analyze.log",
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    threads: 1
    params:
        code=code("analyze"),
        settings=analyze_settings,
    shell:
        "mtarl analyze --settings {params.settings:q} --passk {input.passk} --alignment {input.alignment} "
        "--scores {input.scores} --summary {output.summary} --alignment-out {output.alignment} "
        "--figure {output.figure} --report {output.report} > {log} 2>&1"
