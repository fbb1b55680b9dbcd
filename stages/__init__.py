"""Built-in stage plugins (installed as malak_pipe.stages)."""
