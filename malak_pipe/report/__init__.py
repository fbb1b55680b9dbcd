"""Reports over result files: aggregation over seeds, tables, plots, the results page.

    aggregate  results.json files -> jobs -> mean ± std / Student-t interval per metric
    tables     Markdown, CSV, JSON and LaTeX tables of the aggregated statistics
    plots      accuracy vs size / latency (Pareto front), per-layer latency
    page       a results page with reference figures beside the measured ones
    cli        the ``malak-report`` command

Reports read only result files, never live objects, so every number traces back to a
result.json with its config, cache key and input hashes.
"""
