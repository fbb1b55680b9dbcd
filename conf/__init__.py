"""The Hydra config tree (read as pkg://malak_pipe.conf)."""
