"""Ingest's pure logic: one parser per sender format, fingerprints, heartbeat rules, request
limits, signatures and the per-integration rate limit. No I/O; the routes call it."""
