# Reading or generating problems is small work, and hub downloads need the submit host's network: run locally.
localrules:
    prepare,


rule prepare:
    """Write one split of a task: its training set or one benchmark (schema: mtarl.prepare)."""
    input:
        dataset_input,
    output:
        f"{RESULTS}/data/{{task}}/{{split}}.parquet",
    log:
        "logs/prepare/{task}/{split}.log",
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    threads: 1
    params:
        code=code("prepare"),
        settings=prepare_settings,
    shell:
        "mtarl prepare --task {wildcards.task} --split {wildcards.split} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"
