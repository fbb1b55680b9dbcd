"""The command line: entry points and the console they print to.

    run              ``malak-run`` (a Hydra app) and ``malak-report``
    edgeai           ``edgeai``: one step at a time, through the same engine
    drift            ``malak-drift``: check a batch of inputs against a drift reference
    console          the live node table, progress bars and the summary table
    hydra_callbacks  after a multirun: the mean ± std report of the sweep
"""
