rule evaluate:
    """Score a base or trained model on a task's eval split (avg@n and pass@k)."""
    input:
        model=evaluated_model_input,
        problems=problems("{task}", "eval"),
    output:
        samples=f"{RESULTS}/evaluate/{{model}}/{{task}}/{{run}}/samples.parquet",
        scores=f"{RESULTS}/evaluate/{{model}}/{{task}}/{{run}}/scores.parquet",
    params:
        settings=evaluate_settings,
        model=evaluated_model,
    log:
        "logs/evaluate/{model}/{task}/{run}.log",
    benchmark:
        "benchmarks/evaluate/{model}/{task}/{run}.tsv"
    threads: 1
    container:
        gpu_stage()
    shell:
        "mtarl evaluate --settings {params.settings:q} --threads {threads} --model {params.model:q} "
        "--model-name {wildcards.model} --task {wildcards.task} --run {wildcards.run} "
        "--problems {input.problems} --samples {output.samples} --scores {output.scores} > {log} 2>&1"
