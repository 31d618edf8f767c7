"""The `vosbench` command line: thin Typer commands over the :mod:`vosbench` library."""
