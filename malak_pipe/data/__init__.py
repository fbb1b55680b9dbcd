"""malak_pipe.data."""
