"""The experiments behind the READMEs' result tables, run from the repository
root as modules: `python -m experiments.mixtures`, `python -m experiments.report`."""
