"""MongoDB query and update semantics for exactly the subset Tocsin's stores use, on plain dicts.

Filters: equality (an array field matches when it contains the value), `$eq $ne $gt $lte $in`,
dotted paths into sub-documents. Updates of top-level fields: `$set $inc $min $setOnInsert`,
`$push` (a value, or `$each`) and `$addToSet` (a value). Projections: inclusion. Values of
different types never compare (MongoDB's type bracketing), so `{"due_at": {"$lte": now}}` does
not match a missing or null `due_at`.

Anything else raises `UnsupportedOperation`: a store that needs more adds it here, to the port
(tocsin/runtime/store.py) and to the differential test against FerretDB in the same change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Document = dict[str, Any]

MISSING = object()


class UnsupportedOperation(Exception):
    """The embedded store does not implement this MongoDB feature (it is outside DESIGN §5)."""


def clone(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, immutable scalars); much faster than
    `copy.deepcopy` for the documents the store holds."""
    kind = type(value)
    if kind is dict:
        return {key: clone(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [clone(item) for item in value]
    return value


def clone_document(doc: Mapping[str, Any]) -> Document:
    return {key: clone(item) for key, item in doc.items()}


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    current: Any = doc
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return MISSING
    return current


def _set_path(doc: Document, path: str, value: Any) -> None:
    parts = path.split(".")
    current = doc
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b)


def _compare(op: str, value: Any, operand: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    for candidate in candidates:
        if candidate is MISSING or candidate is None or not _comparable(candidate, operand):
            continue
        if (op == "$gt" and candidate > operand) or (op == "$lte" and candidate <= operand):
            return True
    return False


def _equals(value: Any, operand: Any) -> bool:
    if value is MISSING:
        return operand is None
    if value == operand and _comparable_or_null(value, operand):
        return True
    return isinstance(value, list) and any(
        item == operand and _comparable_or_null(item, operand) for item in value
    )


def _comparable_or_null(a: Any, b: Any) -> bool:
    return (
        a is None
        or b is None
        or _comparable(a, b)
        or (isinstance(a, list | dict) and type(a) is type(b))
    )


def _match_operators(value: Any, operators: Mapping[str, Any]) -> bool:
    for op, operand in operators.items():
        if op == "$eq":
            ok = _equals(value, operand)
        elif op == "$ne":
            ok = not _equals(value, operand)
        elif op in ("$gt", "$lte"):
            ok = _compare(op, value, operand)
        elif op == "$in":
            ok = any(_equals(value, item) for item in operand)
        else:
            raise UnsupportedOperation(f"query operator {op}")
        if not ok:
            return False
    return True


def _is_operator_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(k.startswith("$") for k in value)


def matches(doc: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    for key, condition in query.items():
        if key.startswith("$"):
            raise UnsupportedOperation(f"query operator {key}")
        value = get_path(doc, key)
        if _is_operator_dict(condition):
            if not _match_operators(value, condition):
                return False
        elif not _equals(value, condition):
            return False
    return True


def _each(value: Any) -> list[Any]:
    if isinstance(value, Mapping) and "$each" in value:
        if set(value) != {"$each"}:
            raise UnsupportedOperation("$push modifiers other than $each")
        return list(value["$each"])
    return [value]


def _apply_set(doc: Document, path: str, value: Any) -> None:
    _set_path(doc, path, clone(value))


def _apply_inc(doc: Document, path: str, value: Any) -> None:
    current = get_path(doc, path)
    _set_path(doc, path, (0 if current is MISSING or current is None else current) + value)


def _apply_min(doc: Document, path: str, value: Any) -> None:
    current = get_path(doc, path)
    if current is MISSING or current is None or (_comparable(current, value) and value < current):
        _set_path(doc, path, clone(value))


def _array_at(doc: Document, path: str) -> list[Any]:
    current = get_path(doc, path)
    if current is MISSING or current is None:
        array: list[Any] = []
        _set_path(doc, path, array)
        return array
    if not isinstance(current, list):
        raise UnsupportedOperation(f"array operator on non-array field {path!r}")
    return current


def _apply_add_to_set(doc: Document, path: str, value: Any) -> None:
    if isinstance(value, Mapping) and "$each" in value:
        raise UnsupportedOperation("$addToSet with $each")
    array = _array_at(doc, path)
    if value not in array:
        array.append(clone(value))


def _apply_push(doc: Document, path: str, value: Any) -> None:
    _array_at(doc, path).extend(clone(item) for item in _each(value))


_UPDATERS: Mapping[str, Callable[[Document, str, Any], None]] = {
    "$set": _apply_set,
    "$inc": _apply_inc,
    "$min": _apply_min,
    "$addToSet": _apply_add_to_set,
    "$push": _apply_push,
}


def touched_fields(update: Mapping[str, Any]) -> set[str]:
    """The top-level fields an update can change."""
    return {path for fields in update.values() for path in fields}


def apply_update(doc: Document, update: Mapping[str, Any], *, inserting: bool) -> Document:
    """Return a new document with `update` applied (`$setOnInsert` only when inserting).

    Copy on write: the result shares untouched top-level values with `doc`; every field the
    update touches is copied first, so `doc` itself never changes.
    """
    if not update or not all(key.startswith("$") for key in update):
        raise UnsupportedOperation("replacement updates; use update operators")
    if any("." in path for fields in update.values() for path in fields):
        raise UnsupportedOperation("updates of dotted paths")
    result = dict(doc)
    for field in touched_fields(update):
        if field in result:
            result[field] = clone(result[field])
    for operator, fields in update.items():
        if operator == "$setOnInsert":
            if inserting:
                for path, value in fields.items():
                    _apply_set(result, path, value)
            continue
        updater = _UPDATERS.get(operator)
        if updater is None:
            raise UnsupportedOperation(f"update operator {operator}")
        for path, value in fields.items():
            if path == "_id" and operator != "$set":
                raise UnsupportedOperation("changing _id")
            updater(result, path, value)
    return result


def seed_from_query(query: Mapping[str, Any]) -> Document:
    """The fields an upsert copies from its filter: plain equalities (and `$eq`)."""
    seed: Document = {}
    for key, condition in query.items():
        if key.startswith("$"):
            continue
        if _is_operator_dict(condition):
            if "$eq" in condition:
                _set_path(seed, key, clone(condition["$eq"]))
        else:
            _set_path(seed, key, clone(condition))
    return seed


def project(doc: Document, projection: Mapping[str, Any] | None) -> Document:
    """The document with only the projection's top-level fields (and `_id`)."""
    if not projection:
        return clone_document(doc)
    if any(not value or "." in key for key, value in projection.items()):
        raise UnsupportedOperation("projections other than top-level inclusion")
    return {key: clone(doc[key]) for key in doc if key in projection or key == "_id"}


def sort_key(fields: list[tuple[str, int]]) -> Callable[[Document], Any]:
    """A key for `sorted`: per field, missing/null first, then by type name, then value."""

    def key(doc: Document) -> tuple[Any, ...]:
        parts: list[Any] = []
        for path, _direction in fields:
            value = get_path(doc, path)
            if value is MISSING or value is None:
                parts.append((0, "", 0))
            elif isinstance(value, bool):
                parts.append((3, "bool", value))
            elif isinstance(value, int | float):
                parts.append((1, "number", value))
            else:
                parts.append((2, type(value).__name__, value))
        return tuple(parts)

    return key
