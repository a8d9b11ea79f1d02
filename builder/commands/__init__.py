"""One module per ``pybuild`` subcommand: each defines ``configure(parser)`` and ``run(args) -> int``."""
