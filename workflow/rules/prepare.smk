rule prepare:
    """Write a task's train and eval problem tables (schema: mtarl.prepare)."""
    output:
        train=f"{RESULTS}/data/{{task}}/train.parquet",
        eval=f"{RESULTS}/data/{{task}}/eval.parquet",
    params:
        settings=prepare_settings,
    log:
        "logs/prepare/{task}.log",
    threads: 1
    container:
        image("cpu")
    shell:
        "mtarl prepare --task {wildcards.task} --settings {params.settings:q} "
        "--train {output.train} --eval {output.eval} > {log} 2>&1"
