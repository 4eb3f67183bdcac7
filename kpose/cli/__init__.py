"""The ``kpose`` command line: one word per job (``kpose eval``, ``kpose bench codec``, ...)."""
