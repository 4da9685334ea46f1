"""Tocsin's runtime: the bus and store ports with their Kafka/MongoDB and embedded adapters,
HTTP plumbing, telemetry, settings and the clock. Services import it; it imports no service."""
