"""malak-pipe's Hydra sweeper: a budget-aware search over the compression DAG (malak_pipe.search)."""
