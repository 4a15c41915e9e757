# A train job trains the runs of one variant of a base model on a task: every seed (batch_seeds, one process) or one.
TRAINED = f"{RESULTS}/train/{{model}}/{{task}}/{{run}}"


rule train:
    """GRPO (TRL) of a base model on a task's train split, one variant, its seeds in turn; resumes from each run's
    work/ after a kill."""
    input:
        unpack(train_inputs),
    output:
        models=[directory(path) for path in run_outputs(f"{TRAINED}/model")],
        metrics=run_outputs(f"{TRAINED}/metrics.jsonl"),
        examples=run_outputs(f"{TRAINED}/examples.jsonl"),
    log:
        "logs/train/{model}/{task}/{job}.log",
    benchmark:
        "benchmarks/train/{model}/{task}/{job}.tsv"
    conda:
        conda_env(stage_kind())
    container:
        image(stage_kind())
    threads: 1
    resources:
        gpu=uses_gpu("train"),
    params:
        code=code("train"),
        settings=train_settings,
        model=base_model_param,
        work=lambda wildcards: trained(wildcards, "work"),
        history=history_option,
        launch=train_launch,
    shell:
        "mtarl train --settings {params.settings:q} --threads {threads} --gpus {resources.gpu} "
        "{params.launch} --model {params.model:q} "
        "--problems {input.problems} --eval-problems {input.eval_problems} {params.history} "
        "--work {params.work} --out {output.models} --metrics {output.metrics} --examples {output.examples} "
        ">> {log} 2>&1"
