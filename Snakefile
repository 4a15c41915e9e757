# mtarl: the study "Model-Task Alignment Drives Distinct RL Outcomes" (arXiv 2508.21188) as a workflow.
# Stages, in order: prepare -> pretrain (miniature only) -> probe (probe_shard jobs, gathered) -> train -> evaluate
# -> analyze.
# Each rule runs one `mtarl <stage>` command; all logic lives in the mtarl package (src/mtarl).
#
#   snakemake                                  # the miniature study (config/config.yaml)
#   snakemake --configfile config/smoke.yaml   # any other configuration
import os

from snakemake.utils import min_version

min_version("9.0")


# The default config is found beside this file, so runs in another --directory still start from it;
# --configfile FILE deep-merges FILE over it (config/smoke.yaml), --replace-workflow-config replaces it.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# snakemake --report report.html: the study's tables, figures and predictions, described by this page.
report: "src/mtarl/analysis/captions/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analyze.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
