"""malak_pipe.deploy."""
