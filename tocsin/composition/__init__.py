"""The composition root: the configuration file, the wiring of the four services, the two run
modes (distributed: one service per process; embedded: all in one) and the CLI."""
