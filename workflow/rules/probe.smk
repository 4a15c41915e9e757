rule probe:
    """pass@k of a base model on a task's eval split: the model-task alignment measure."""
    input:
        model=base_model_input,
        problems=problems("{task}", "eval"),
    output:
        samples=f"{RESULTS}/probe/{{model}}/{{task}}/samples.parquet",
        passk=f"{RESULTS}/probe/{{model}}/{{task}}/passk.parquet",
    params:
        settings=probe_settings,
        model=base_model_param,
    log:
        "logs/probe/{model}/{task}.log",
    benchmark:
        "benchmarks/probe/{model}/{task}.tsv"
    threads: 1
    container:
        gpu_stage()
    shell:
        "mtarl probe --settings {params.settings:q} --threads {threads} --model {params.model:q} "
        "--model-name {wildcards.model} --task {wildcards.task} --problems {input.problems} "
        "--samples {output.samples} --passk {output.passk} > {log} 2>&1"
