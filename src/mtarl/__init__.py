"""mtarl: a reproducible pipeline for "Model-Task Alignment Drives Distinct RL Outcomes" (arXiv 2508.21188).

Each stage of the study is a module with a ``main(args)`` reached through the ``mtarl`` CLI
(``mtarl prepare|pretrain|probe|train|evaluate|analyze``); the Snakemake workflow only wires files to it.
"""

__version__ = "0.1.0"
