rule pretrain:
    """Pretrain a tiny base model from scratch and select its checkpoint by measured pass@k (miniature only)."""
    input:
        problems=pretrain_problems,
    output:
        model=directory(f"{RESULTS}/models/{{model}}/model"),
        curve=f"{RESULTS}/models/{{model}}/curve.parquet",
    log:
        "logs/pretrain/{model}.log",
    benchmark:
        "benchmarks/pretrain/{model}.tsv"
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    threads: 1
    params:
        code=code("pretrain"),
        settings=pretrain_settings,
    shell:
        "mtarl pretrain --settings {params.settings:q} --threads {threads} --problems {input.problems} "
        "--out {output.model} --curve {output.curve} > {log} 2>&1"
