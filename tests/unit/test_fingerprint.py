"""The label-set fingerprint must equal Prometheus/Alertmanager's, bit for bit."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.fingerprint import fingerprint_hex, label_set_fingerprint

# Vectors from prometheus/common model/signature_test.go (TestLabelsToSignature,
# TestMetricToFingerprint and the labelSetToFingerprint benchmarks).
PROMETHEUS_VECTORS: list[tuple[dict[str, str], int]] = [
    ({}, 14695981039346656037),
    ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
    ({"first-label": "first-label-value"}, 5146282821936882169),
    (
        {"first-label": "first-label-value", "second-label": "second-label-value"},
        3195800080984914717,
    ),
    (
        {
            "first-label": "first-label-value",
            "second-label": "second-label-value",
            "third-label": "third-label-value",
        },
        13843036195897128121,
    ),
]


def _reference_fnv1a(data: bytes) -> int:
    """FNV-1a 64 written out independently of the code under test."""
    state = 14695981039346656037
    for byte in data:
        state = ((state ^ byte) * 1099511628211) % (1 << 64)
    return state


label_names = st.text(min_size=1, max_size=20)
label_values = st.text(max_size=40)
label_sets = st.dictionaries(label_names, label_values, max_size=8)


@pytest.mark.parametrize(("labels", "expected"), PROMETHEUS_VECTORS)
def test_fingerprint_matches_prometheus_reference_vectors(
    labels: dict[str, str], expected: int
) -> None:
    assert label_set_fingerprint(labels.items()) == expected


@pytest.mark.parametrize(("labels", "expected"), PROMETHEUS_VECTORS)
def test_fingerprint_hex_is_the_reference_value_as_16_hex_digits(
    labels: dict[str, str], expected: int
) -> None:
    assert fingerprint_hex(labels.items()) == f"{expected:016x}"


def test_empty_label_set_fingerprint_is_the_fnv_offset_basis() -> None:
    assert fingerprint_hex([]) == "cbf29ce484222325"


def test_fingerprint_hex_keeps_leading_zeros() -> None:
    # Search a small space for a label set whose fingerprint is < 2**60 (leading hex zero).
    for n in range(100_000):
        value = label_set_fingerprint([("n", str(n))])
        if value < 1 << 60:
            text = fingerprint_hex([("n", str(n))])
            assert len(text) == 16
            assert text.startswith("0")
            assert int(text, 16) == value
            return
    pytest.fail("no label set with a leading-zero fingerprint found in the search space")


@given(label_sets, st.randoms(use_true_random=False))
def test_fingerprint_does_not_depend_on_label_order(
    labels: dict[str, str], rnd: random.Random
) -> None:
    pairs = list(labels.items())
    shuffled = pairs[:]
    rnd.shuffle(shuffled)
    assert label_set_fingerprint(shuffled) == label_set_fingerprint(pairs)
    assert label_set_fingerprint(reversed(pairs)) == label_set_fingerprint(pairs)


@given(label_sets)
def test_fingerprint_hex_is_16_lowercase_hex_digits(labels: dict[str, str]) -> None:
    text = fingerprint_hex(labels.items())
    assert re.fullmatch(r"[0-9a-f]{16}", text)
    assert int(text, 16) == label_set_fingerprint(labels.items())


@given(label_sets, label_sets)
def test_different_label_sets_get_different_fingerprints(
    first: dict[str, str], second: dict[str, str]
) -> None:
    if first != second:
        assert label_set_fingerprint(first.items()) != label_set_fingerprint(second.items())


def test_separator_keeps_name_value_boundaries_apart() -> None:
    # Without the 0xFF separators these would hash the same byte string "abc".
    assert label_set_fingerprint([("ab", "c")]) != label_set_fingerprint([("a", "bc")])
    assert label_set_fingerprint([("a", ""), ("b", "")]) != label_set_fingerprint([("ab", "")])


def test_value_change_changes_fingerprint() -> None:
    base = {"alertname": "HighLatency", "instance": "web-1"}
    other = {"alertname": "HighLatency", "instance": "web-2"}
    assert label_set_fingerprint(base.items()) != label_set_fingerprint(other.items())


@pytest.mark.parametrize(
    "labels",
    [
        {"app.kubernetes.io/name": "checkout"},
        {"$weird": "x"},
        {"region": "zürich", "team": "платежи", "emoji": "🔥"},
        {"empty": ""},
    ],
)
def test_unusual_names_and_unicode_values_fingerprint_deterministically(
    labels: dict[str, str],
) -> None:
    first = fingerprint_hex(labels.items())
    again = fingerprint_hex(dict(reversed(list(labels.items()))).items())
    assert first == again
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert first != fingerprint_hex([])


def test_unicode_is_hashed_as_utf8_bytes() -> None:
    # FNV-1a over the UTF-8 bytes, computed independently here.
    expected = _reference_fnv1a("région".encode() + b"\xff" + "zürich".encode() + b"\xff")
    assert label_set_fingerprint([("région", "zürich")]) == expected


def test_label_names_sort_bytewise() -> None:
    # "Z" (0x5A) sorts before "a" (0x61) bytewise, as in Go's sort of strings.
    expected = _reference_fnv1a(b"Z\xff1\xffa\xff2\xff")
    assert label_set_fingerprint([("a", "2"), ("Z", "1")]) == expected
