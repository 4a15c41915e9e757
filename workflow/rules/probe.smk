rule probe:
    """pass@k of a base model on one benchmark of a task: the model-task alignment measure."""
    input:
        model=base_model_input,
        problems=problems("{task}", "{benchmark}"),
    output:
        samples=f"{RESULTS}/probe/{{model}}/{{task}}/{{benchmark}}/samples.parquet",
        passk=f"{RESULTS}/probe/{{model}}/{{task}}/{{benchmark}}/passk.parquet",
        metrics=f"{RESULTS}/probe/{{model}}/{{task}}/{{benchmark}}/metrics.parquet",
        contamination=f"{RESULTS}/probe/{{model}}/{{task}}/{{benchmark}}/contamination.parquet",
        alignment=f"{RESULTS}/probe/{{model}}/{{task}}/{{benchmark}}/alignment.parquet",
    params:
        settings=probe_settings,
        model=base_model_param,
    log:
        "logs/probe/{model}/{task}/{benchmark}.log",
    benchmark:
        "benchmarks/probe/{model}/{task}/{benchmark}.tsv"
    threads: 1
    resources:
        gpu=uses_gpu("probe"),
    conda:
        conda_env(stage_kind())
    container:
        image(stage_kind())
    shell:
        "mtarl probe --settings {params.settings:q} --threads {threads} --gpus {resources.gpu} "
        "--model {params.model:q} "
        "--model-name {wildcards.model} --task {wildcards.task} --benchmark {wildcards.benchmark} "
        "--problems {input.problems} "
        "--samples {output.samples} --passk {output.passk} --metrics {output.metrics} "
        "--contamination {output.contamination} --alignment {output.alignment} > {log} 2>&1"
