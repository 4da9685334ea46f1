"""Tocsin's runtime: configuration, settings, the bus and store ports with their adapters,
telemetry and the CLI. Services import this package; it imports no service."""
