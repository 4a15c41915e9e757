# One evaluate job per model x task x job (base; a variant's seeds or one run; or, with batch_evaluation, the whole
# cell: base and every trained run): each model loads once for all the task's benchmarks, and the job's runs share one
# process and one table of each kind.
EVALUATION = f"{RESULTS}/evaluate/{{model}}/{{task}}/{{job}}"


rule evaluate:
    """Score base or trained models on every benchmark of a task: avg@n, pass@k, greedy accuracy, best validation."""
    input:
        unpack(evaluate_inputs),
    output:
        samples=f"{EVALUATION}/samples.parquet",
        greedy=f"{EVALUATION}/greedy.parquet",
        scores=f"{EVALUATION}/scores.parquet",
    log:
        "logs/evaluate/{model}/{task}/{job}.log",
    benchmark:
        "benchmarks/evaluate/{model}/{task}/{job}.tsv"
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
        runs=job_runs,
        benchmarks=lambda wildcards: benchmarks(wildcards.task),
        train_metrics=train_metrics_option,
    shell:
        "mtarl evaluate --settings {params.settings:q} --threads {threads} --gpus {resources.gpu} "
        "--models {input.model:q} --model-name {wildcards.model} --task {wildcards.task} --runs {params.runs} "
        "--benchmarks {params.benchmarks} --problems {input.problems} {params.train_metrics} "
        "--samples {output.samples} --greedy {output.greedy} --scores {output.scores} > {log} 2>&1"
