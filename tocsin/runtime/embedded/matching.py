"""MongoDB query and update semantics for exactly the subset Tocsin's stores use, on plain dicts.

Filters: equality (an array field matches when it contains the value), `$eq $ne $gt $lt $lte
$in`,
dotted paths into sub-documents. Updates of top-level fields: `$set $inc $min $setOnInsert`,
`$push` (a value, or `$each`) and `$addToSet` (a value). Projections: inclusion. Values of
different types never compare (MongoDB's type bracketing), so `{"due_at": {"$lte": now}}` does
not match a missing or null `due_at`; they sort, `$min` and test equal in MongoDB's BSON order,
where 1 == 1.0 but True != 1.

Anything else raises `UnsupportedOperation`: a store that needs more adds it here, to the port
(tocsin/runtime/store.py) and to the differential test against FerretDB in the same change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Document = dict[str, Any]

MISSING = object()


class UnsupportedOperation(Exception):
    """The embedded store does not implement this MongoDB feature (no store uses it)."""


class InvalidUpdate(Exception):
    """An update MongoDB refuses too (a write error): e.g. `$inc` of a string, `$push` to a
    field that is not an array, two operators on one field. Nothing is changed."""


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
    """The value at a dotted path into sub-documents, or MISSING. A path through an array has
    MongoDB semantics the stores never need (it reaches into every element): refused."""
    current: Any = doc
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part, MISSING)
        elif isinstance(current, list):
            raise UnsupportedOperation(f"path {path!r} through an array")
        else:
            return MISSING
    return current


# -- BSON comparison order -----------------------------------------------------------------
# MongoDB orders values of different types by type first (MinKey, null, numbers, strings,
# objects, arrays, binary, ObjectId, booleans, dates, timestamps, regexes, MaxKey), then by
# value; ints and floats are one type. Only the types the store holds have a rank here.
_EMPTY_ARRAY = 1  # sorts before null (and a missing field, which sorts as null)
_NULL, _NUMBER, _STRING, _OBJECT, _ARRAY, _BOOL, _DATE = 2, 3, 4, 5, 6, 9, 10


def _rank(value: Any) -> int:
    kind = type(value)
    if kind is str:
        return _STRING
    if kind is int or kind is float:
        return _NUMBER
    if value is None or value is MISSING:
        return _NULL
    if kind is bool:
        return _BOOL
    if kind is dict:
        return _OBJECT
    if kind is list:
        return _ARRAY
    if kind is datetime:
        return _DATE
    raise UnsupportedOperation(f"values of type {kind.__name__}")


def bson_key(value: Any) -> tuple[Any, ...]:
    """A key that orders values as MongoDB compares them, and is equal exactly for values
    MongoDB finds equal (1 == 1.0, but True != 1, and {"a": 1, "b": 2} != {"b": 2, "a": 1})."""
    rank = _rank(value)
    if rank == _NULL:
        return (_NULL,)
    if rank == _OBJECT:
        # Pair by pair: the value's type, then the field name, then the value; fewer pairs sort
        # first when all before are equal.
        return (_OBJECT, tuple((_rank(v), k, bson_key(v)) for k, v in value.items()))
    if rank == _ARRAY:
        return (_ARRAY, tuple(bson_key(item) for item in value))
    return (rank, value)


def _same(a: Any, b: Any) -> bool:
    kind = type(a)
    if kind is type(b) and (kind is str or kind is int or kind is datetime or kind is bool):
        return bool(a == b)  # the common case, without building keys
    return bson_key(a) == bson_key(b)


def identical(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down, field order included: what MongoDB
    counts as unchanged when it reports `modified_count`."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return list(a) == list(b) and all(identical(a[key], b[key]) for key in a)
    if kind is list:
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def sort_key(fields: list[tuple[str, int]]) -> Callable[[Document], tuple[Any, ...]]:
    """A key for `sorted` in MongoDB's order. An array field sorts by its least element
    ascending and its greatest descending; an empty one before null."""

    def field_key(value: Any, direction: int) -> tuple[Any, ...]:
        if type(value) is list:
            if not value:
                return (_EMPTY_ARRAY,)
            keys = [bson_key(item) for item in value]
            return min(keys) if direction > 0 else max(keys)
        return bson_key(value)

    def key(doc: Document) -> tuple[Any, ...]:
        return tuple(field_key(get_path(doc, path), direction) for path, direction in fields)

    return key


# -- queries -------------------------------------------------------------------------------


def _compare(op: str, value: Any, operand: Any) -> bool:
    # Type bracketing: only values of the operand's type compare; an array compares by its
    # elements.
    rank = _rank(operand)
    if rank not in (_NUMBER, _STRING, _BOOL, _DATE):
        raise UnsupportedOperation(f"{op} with a {type(operand).__name__}")
    candidates = value if type(value) is list else (value,)
    for candidate in candidates:
        if _rank(candidate) != rank:
            continue
        if (
            (op == "$gt" and candidate > operand)
            or (op == "$lt" and candidate < operand)
            or (op == "$lte" and candidate <= operand)
        ):
            return True
    return False


def _equals(value: Any, operand: Any) -> bool:
    """MongoDB equality: null also matches a missing field; an array field matches when it
    equals the operand or one of its elements does."""
    if value is MISSING:
        return operand is None
    if _same(value, operand):
        return True
    return type(value) is list and any(_same(item, operand) for item in value)


def _match_operators(value: Any, operators: Mapping[str, Any]) -> bool:
    for op, operand in operators.items():
        if op == "$eq":
            ok = _equals(value, operand)
        elif op == "$ne":
            ok = not _equals(value, operand)
        elif op in ("$gt", "$lt", "$lte"):
            ok = _compare(op, value, operand)
        elif op == "$in":
            if type(operand) is not list:
                raise UnsupportedOperation("$in needs an array")
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


# -- updates -------------------------------------------------------------------------------


def _apply_set(doc: Document, field: str, value: Any) -> None:
    doc[field] = clone(value)


def _apply_inc(doc: Document, field: str, value: Any) -> None:
    current = doc.get(field, MISSING)
    if _rank(value) != _NUMBER or (current is not MISSING and _rank(current) != _NUMBER):
        raise InvalidUpdate(f"$inc of {field!r}: not a number")
    doc[field] = value if current is MISSING else current + value


def _apply_min(doc: Document, field: str, value: Any) -> None:
    current = doc.get(field, MISSING)
    if current is MISSING or bson_key(value) < bson_key(current):
        doc[field] = clone(value)


def _array_at(doc: Document, field: str) -> list[Any]:
    current = doc.get(field, MISSING)
    if current is MISSING:
        array: list[Any] = []
        doc[field] = array
        return array
    if type(current) is not list:
        raise InvalidUpdate(f"{field!r} is not an array")
    return current


def _apply_add_to_set(doc: Document, field: str, value: Any) -> None:
    if isinstance(value, Mapping) and "$each" in value:
        raise UnsupportedOperation("$addToSet with $each")
    array = _array_at(doc, field)
    if not any(_same(item, value) for item in array):
        array.append(clone(value))


def _apply_push(doc: Document, field: str, value: Any) -> None:
    items = [value]
    if isinstance(value, Mapping) and "$each" in value:
        if set(value) != {"$each"}:
            raise UnsupportedOperation("$push modifiers other than $each")
        items = list(value["$each"])
    _array_at(doc, field).extend(clone(item) for item in items)


_UPDATERS: Mapping[str, Callable[[Document, str, Any], None]] = {
    "$set": _apply_set,
    "$setOnInsert": _apply_set,
    "$inc": _apply_inc,
    "$min": _apply_min,
    "$addToSet": _apply_add_to_set,
    "$push": _apply_push,
}


# Operators that change a field's value in place (the others replace it).
_IN_PLACE = frozenset({"$addToSet", "$push"})
# Operators whose value becomes the field's value as it is.
_TAKEN = frozenset({"$set", "$setOnInsert"})


def touched_fields(update: Mapping[str, Any]) -> set[str]:
    """The top-level fields an update can change."""
    return {path for fields in update.values() for path in fields}


def check_update(update: Mapping[str, Any]) -> None:
    """Refuse an update as MongoDB does before it looks for a document: so an invalid update
    fails also when nothing matches."""
    if not update or not all(key.startswith("$") for key in update):
        raise UnsupportedOperation("replacement updates; use update operators")
    for operator in update:
        if operator not in _UPDATERS:
            raise UnsupportedOperation(f"update operator {operator}")
    paths = [path for fields in update.values() for path in fields]
    if any("." in path for path in paths):
        raise UnsupportedOperation("updates of dotted paths")
    if "_id" in paths:
        raise UnsupportedOperation("updates of _id")
    if len(paths) != len(set(paths)):
        raise InvalidUpdate("two operators of one update change the same field")
    if any(_rank(value) != _NUMBER for value in update.get("$inc", {}).values()):
        raise InvalidUpdate("$inc by something else than a number")


def apply_update(
    doc: Document, update: Mapping[str, Any], *, inserting: bool, owned: bool = False
) -> Document:
    """Return a new document with `update` applied (`$setOnInsert` only when inserting).

    Copy on write: the result shares untouched top-level values with `doc`; a field an array
    operator changes in place (`$push`, `$addToSet`) is copied first, so `doc` itself never
    changes, also when the update fails half-way with `InvalidUpdate` (as MongoDB, which then
    changes nothing). `owned`: the update's values are the caller's to give away (fresh copies
    nobody changes in place), so the result takes them as they are instead of copies; the
    caller also checked the update (`check_update`) already.
    """
    if not owned:
        check_update(update)
    result = dict(doc)
    changes: list[tuple[str, str, Any]] = []
    for operator, fields in update.items():
        if operator == "$setOnInsert" and not inserting:
            continue
        in_place = operator in _IN_PLACE
        for field, value in fields.items():
            if in_place and field in result:
                result[field] = clone(result[field])
            changes.append((field, operator, value))
    # MongoDB (5.0+) applies an update's fields in lexicographic order, which decides where new
    # fields land (fields already there keep their place); no field is in two operators
    # (check_update).
    if any(field not in result for field, _, _ in changes):
        changes.sort(key=lambda change: change[0])
    for field, operator, value in changes:
        if owned and operator in _TAKEN:
            result[field] = value
        else:
            _UPDATERS[operator](result, field, value)
    return result


def seed_from_query(query: Mapping[str, Any]) -> Document:
    """The fields an upsert copies from its filter: plain equalities (and `$eq`)."""
    seed: Document = {}
    for key, condition in query.items():
        if "." in key:
            raise UnsupportedOperation("upserts on dotted paths")
        if _is_operator_dict(condition):
            if "$eq" in condition:
                seed[key] = clone(condition["$eq"])
        else:
            seed[key] = clone(condition)
    return seed


def project(doc: Document, projection: Mapping[str, Any] | None) -> Document:
    """The document with only the projection's top-level fields (and `_id`)."""
    if not projection:
        return clone_document(doc)
    if any(not value or "." in key for key, value in projection.items()):
        raise UnsupportedOperation("projections other than top-level inclusion")
    return {
        key: value if type(value) in _IMMUTABLE else clone(value)
        for key, value in doc.items()
        if key in projection or key == "_id"
    }


# Values a copy may share (stored documents are never changed in place; these cannot be).
_IMMUTABLE = frozenset({str, int, float, bool, type(None), datetime})
