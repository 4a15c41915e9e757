# Gathering a probe's shards is small CPU work: run it where Snakemake runs, not as a cluster job.
localrules:
    probe,


rule probe_shard:
    """Samples and verifies one shard (a run of problems) of a base model's probe on one benchmark."""
    input:
        model=base_model_input,
        problems=problems("{task}", "{benchmark}"),
    output:
        samples=f"{PROBE}/shards/{{shard}}/samples.parquet",
        contamination=f"{PROBE}/shards/{{shard}}/contamination.parquet",
        greedy=f"{PROBE}/shards/{{shard}}/greedy.parquet",
    log:
        "logs/probe/{model}/{task}/{benchmark}/shard{shard}.log",
    benchmark:
        "benchmarks/probe/{model}/{task}/{benchmark}/shard{shard}.tsv"
    conda:
        conda_env(stage_kind())
    container:
        image(stage_kind())
    threads: 1
    resources:
        gpu=uses_gpu("probe"),
    params:
        code=code("probe_shard"),
        settings=probe_shard_settings,
        model=base_model_param,
    shell:
        "mtarl probe_shard --settings {params.settings:q} --threads {threads} --gpus {resources.gpu} "
        "--model {params.model:q} --task {wildcards.task} --benchmark {wildcards.benchmark} "
        "--problems {input.problems} --shard {wildcards.shard} "
        "--samples {output.samples} --contamination {output.contamination} --greedy {output.greedy} > {log} 2>&1"


rule probe:
    """pass@k, maj@k, avg@k and the profile (greedy@1, format and strategy shares) of a base model on one benchmark,
    its contamination check and alignment verdict."""
    input:
        problems=problems("{task}", "{benchmark}"),
        samples=lambda wildcards: probe_shard_files(wildcards, "samples"),
        contamination=lambda wildcards: probe_shard_files(wildcards, "contamination"),
        greedy=lambda wildcards: probe_shard_files(wildcards, "greedy"),
    output:
        samples=f"{PROBE}/samples.parquet",
        passk=f"{PROBE}/passk.parquet",
        metrics=f"{PROBE}/metrics.parquet",
        contamination=f"{PROBE}/contamination.parquet",
        alignment=f"{PROBE}/alignment.parquet",
    log:
        "logs/probe/{model}/{task}/{benchmark}/gather.log",
    benchmark:
        "benchmarks/probe/{model}/{task}/{benchmark}/gather.tsv"
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    threads: 1
    params:
        code=code("probe"),
        settings=probe_settings,
    shell:
        "mtarl probe --settings {params.settings:q} --threads {threads} "
        "--model-name {wildcards.model} --task {wildcards.task} --benchmark {wildcards.benchmark} "
        "--problems {input.problems} "
        "--shard-samples {input.samples} --shard-contamination {input.contamination} --shard-greedy {input.greedy} "
        "--samples {output.samples} --passk {output.passk} --metrics {output.metrics} "
        "--contamination {output.contamination} --alignment {output.alignment} > {log} 2>&1"
