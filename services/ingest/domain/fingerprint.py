"""Alert identity: Prometheus/Alertmanager's label-set fingerprint (FNV-1a 64).

Label names are sorted bytewise; each contributes `name 0xFF value 0xFF`. Alertmanager prints
the result as 16 lowercase hex digits, so alerts from any source with the same labels dedupe
together with alerts Alertmanager fingerprinted itself.
"""

from __future__ import annotations

from collections.abc import Iterable

_OFFSET64 = 14695981039346656037
_PRIME64 = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF


def _fnv1a_add(state: int, data: bytes) -> int:
    for byte in data:
        state ^= byte
        state = (state * _PRIME64) & _MASK64
    return state


def label_set_fingerprint(labels: Iterable[tuple[str, str]]) -> int:
    state = _OFFSET64
    for name, value in sorted(labels, key=lambda pair: pair[0].encode()):
        state = _fnv1a_add(state, name.encode())
        state = _fnv1a_add(state, bytes([_SEPARATOR]))
        state = _fnv1a_add(state, value.encode())
        state = _fnv1a_add(state, bytes([_SEPARATOR]))
    return state


def fingerprint_hex(labels: Iterable[tuple[str, str]]) -> str:
    return f"{label_set_fingerprint(labels):016x}"
