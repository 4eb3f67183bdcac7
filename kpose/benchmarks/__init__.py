"""Benchmarks behind ``kpose bench NAME``: each module has ``add_arguments(parser)`` and
``run(args) -> int`` and prints a table (``--json`` for machines)."""
