"""malak_pipe.mcu."""
