rule train:
    """GRPO (TRL) of a base model on a task's train split, one variant and seed; resumes from work/ after a kill."""
    input:
        unpack(train_inputs),
    output:
        model=directory(f"{RESULTS}/train/{{model}}/{{task}}/{{run}}/model"),
        metrics=f"{RESULTS}/train/{{model}}/{{task}}/{{run}}/metrics.jsonl",
        examples=f"{RESULTS}/train/{{model}}/{{task}}/{{run}}/examples.jsonl",
    log:
        "logs/train/{model}/{task}/{run}.log",
    benchmark:
        "benchmarks/train/{model}/{task}/{run}.tsv"
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
        work=f"{RESULTS}/train/{{model}}/{{task}}/{{run}}/work",
        history=history_option,
        launch=train_launch,
    shell:
        "mtarl train --settings {params.settings:q} --threads {threads} --gpus {resources.gpu} "
        "{params.launch} --model {params.model:q} "
        "--problems {input.problems} --eval-problems {input.eval_problems} {params.history} "
        "--work {params.work} --out {output.model} --metrics {output.metrics} --examples {output.examples} "
        ">> {log} 2>&1"
