rule evaluate:
    """Score a base or trained model on one benchmark of a task (avg@n and pass@k)."""
    input:
        model=evaluated_model_input,
        problems=problems("{task}", "{benchmark}"),
    output:
        samples=f"{RESULTS}/evaluate/{{model}}/{{task}}/{{run}}/{{benchmark}}/samples.parquet",
        scores=f"{RESULTS}/evaluate/{{model}}/{{task}}/{{run}}/{{benchmark}}/scores.parquet",
    log:
        "logs/evaluate/{model}/{task}/{run}/{benchmark}.log",
    benchmark:
        "benchmarks/evaluate/{model}/{task}/{run}/{benchmark}.tsv"
    conda:
        conda_env(stage_kind())
    container:
        image(stage_kind())
    threads: 1
    resources:
        gpu=uses_gpu("evaluate"),
    params:
        code=code("evaluate"),
        settings=evaluate_settings,
        model=evaluated_model,
    shell:
        "mtarl evaluate --settings {params.settings:q} --threads {threads} --gpus {resources.gpu} "
        "--model {params.model:q} "
        "--model-name {wildcards.model} --task {wildcards.task} --benchmark {wildcards.benchmark} "
        "--run {wildcards.run} "
        "--problems {input.problems} --samples {output.samples} --scores {output.scores} > {log} 2>&1"
