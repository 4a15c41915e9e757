rule prepare:
    """Write one split of a task: its training set or one benchmark (schema: mtarl.prepare)."""
    input:
        dataset_input,
    output:
        f"{RESULTS}/data/{{task}}/{{split}}.parquet",
    params:
        code=code("prepare"),
        settings=prepare_settings,
    log:
        "logs/prepare/{task}/{split}.log",
    threads: 1
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    shell:
        "mtarl prepare --task {wildcards.task} --split {wildcards.split} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"
