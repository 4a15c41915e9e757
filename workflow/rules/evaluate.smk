# One evaluate job per model x task x run: the model loads once for all the task's benchmarks.
EVALUATION = f"{RESULTS}/evaluate/{{model}}/{{task}}/{{run}}"


rule evaluate:
    """Score a base or trained model on every benchmark of a task: avg@n, pass@k, greedy accuracy, best validation."""
    input:
        unpack(evaluate_inputs),
    output:
        samples=f"{EVALUATION}/samples.parquet",
        greedy=f"{EVALUATION}/greedy.parquet",
        scores=f"{EVALUATION}/scores.parquet",
    log:
        "logs/evaluate/{model}/{task}/{run}.log",
    benchmark:
        "benchmarks/evaluate/{model}/{task}/{run}.tsv"
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
        benchmarks=lambda wildcards: benchmarks(wildcards.task),
        train_metrics=train_metrics_option,
    shell:
        "mtarl evaluate --settings {params.settings:q} --threads {threads} --gpus {resources.gpu} "
        "--model {params.model:q} --model-name {wildcards.model} --task {wildcards.task} --run {wildcards.run} "
        "--benchmarks {params.benchmarks} --problems {input.problems} {params.train_metrics} "
        "--samples {output.samples} --greedy {output.greedy} --scores {output.scores} > {log} 2>&1"
