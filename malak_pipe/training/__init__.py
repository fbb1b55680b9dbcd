"""malak_pipe.training."""
