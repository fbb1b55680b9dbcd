"""malak_pipe.compress."""
