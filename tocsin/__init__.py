"""Tocsin. Layers, outermost first (enforced by import-linter in `make lint`):

- `tocsin.composition`: the composition root: configuration file, wiring, the two run modes
  (`tocsin up`, `tocsin serve`) and the CLI. It imports the services.
- `services.<name>`: the four services; none imports another.
- `tocsin.runtime`: shared plumbing: bus and store ports with their adapters, HTTP, telemetry,
  settings, clock. It imports no service.
- `schemas`: the message contracts.
"""
