"""Search over the compression DAG for the best model that fits a target, measured on it.

    space       the search space declared in config: knobs of the DAG as Hydra overrides
    goals       objectives and constraints: metrics of results.json named ``node.metric``
    study       the Optuna study: sampler, storage (resumable), stale trials
    trial_events  per-epoch validation accuracy reported to the study; pruning
    front       Pareto front, the pick, hypervolume
    report      tables, plots and ``best.yaml`` of a finished search

The Hydra sweeper that drives it lives in ``hydra_plugins/malak_search`` (Hydra only loads
plugins from that namespace): ``malak-run -m hydra/sweeper=search ...``, or an experiment
that selects it (``+experiment=fits_mcu_fmnist``).
"""
