"""malak_pipe.models."""
