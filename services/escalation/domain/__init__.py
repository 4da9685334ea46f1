"""Escalation's pure domain: the incident lifecycle and the escalation plan. No I/O."""
