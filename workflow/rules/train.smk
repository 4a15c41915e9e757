rule train:
    """GRPO (TRL) of a base model on a task's train split; resumes from work/ after a kill."""
    input:
        model=base_model_input,
        problems=problems("{task}", "train"),
    output:
        model=directory(f"{RESULTS}/train/{{model}}/{{task}}/{{run}}/model"),
        metrics=f"{RESULTS}/train/{{model}}/{{task}}/{{run}}/metrics.jsonl",
    params:
        settings=train_settings,
        model=base_model_param,
        work=f"{RESULTS}/train/{{model}}/{{task}}/{{run}}/work",
    log:
        "logs/train/{model}/{task}/{run}.log",
    benchmark:
        "benchmarks/train/{model}/{task}/{run}.tsv"
    threads: 1
    container:
        gpu_stage()
    shell:
        "mtarl train --settings {params.settings:q} --threads {threads} --model {params.model:q} "
        "--problems {input.problems} --work {params.work} --out {output.model} "
        "--metrics {output.metrics} >> {log} 2>&1"
