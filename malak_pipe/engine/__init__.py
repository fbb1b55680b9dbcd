"""The engine: a composed config becomes a validated DAG of stage nodes, run with a content-hash cache.

    config     RunConfig: the pydantic view of Hydra's composed config (no DictConfig past it)
    registry   stage classes from the ``malak_pipe.stages`` entry-point group
    graph      nodes, typed input wiring, validation, topological order
    store      the content-addressed cache and atomic files
    context    what a stage sees while it runs (inputs, atomic saves, progress)
    runner     one node after another: cache lookup, stage run, result.json
    results    the result.json / run.json / results.json schema
    events     what the runner reports while it runs (the CLI's console implements it)
    app        one run from a RunConfig to result files and an exit code
    standalone one stage on real files without a pipeline (plugin tests, notebooks)

The engine knows no stage by name and imports no library module: stages and artifact
types are plugins.
"""
