"""malak-pipe's Hydra launcher for Ray clusters (``hydra/launcher=ray_cluster``)."""
