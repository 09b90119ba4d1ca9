"""Conversions between qdrant-client's inputs and results and ferrovec's native API.

Inputs may be qdrant-client models, ferrovec's light models (``ferrovec.qdrant.models``) or plain
dicts in Qdrant's JSON shape. Results are qdrant-client's own types when it is installed, else
ferrovec's light models.
"""

from __future__ import annotations

import datetime
import operator
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

import ferrovec._native as native
from ferrovec.errors import InvalidInputError, UnsupportedError

out: Any
try:  # qdrant-client is optional: its types are returned when it is there.
    from qdrant_client.http import models as out
except ImportError:  # pragma: no cover - exercised by the no-qdrant-client test
    from ferrovec.qdrant import models as out

_jsonable: Callable[[Any], Any]
try:  # pydantic comes with qdrant-client: spell dates exactly as it does
    from pydantic_core import to_jsonable_python as _jsonable
except ImportError:  # pragma: no cover - exercised by the no-qdrant-client test
    _jsonable = operator.methodcaller("isoformat")


_HYPHENATED = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# The spellings of a UUID that Qdrant accepts (Python's uuid.UUID alone takes more).
_UUID = re.compile(rf"[0-9a-fA-F]{{32}}|{_HYPHENATED}|\{{{_HYPHENATED}\}}|urn:uuid:{_HYPHENATED}")

DISTANCES = {"Cosine": "cosine", "Dot": "dot", "Euclid": "euclid", "Manhattan": "manhattan"}
NATIVE_TO_DISTANCE = {v: k for k, v in DISTANCES.items()}


def dump(obj: Any) -> Any:
    """A model (qdrant-client's or ferrovec's) as Qdrant's JSON shape; dicts and lists are
    walked, so models nested in them are converted too. Dates, times and UUIDs become strings,
    as qdrant-client sends them."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (datetime.date, datetime.time)):
        return _jsonable(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(obj, Mapping):
        return {k: dump(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [dump(v) for v in obj]
    if isinstance(obj, uuid.UUID):
        return str(obj)
    value = getattr(obj, "value", None)  # an Enum
    return obj if value is None else value


def field(obj: Any, name: str, default: Any = None) -> Any:
    """`obj.name` for a model, `obj[name]` for a dict."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def point_id(value: Any) -> int | str:
    """A point id as Qdrant takes it: an unsigned integer, or a UUID in any of its spellings
    (returned in canonical, hyphenated lowercase form)."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"point id {value!r} is a bool; ids are unsigned integers or UUIDs")
    if isinstance(value, (int, np.integer)):
        if value < 0 or value >= 2**64:
            raise InvalidInputError(f"point id {value} is not an unsigned 64-bit integer")
        return int(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        if _UUID.fullmatch(value) is None:
            raise InvalidInputError(f"Point id {value} is not a valid UUID")
        return str(uuid.UUID(value))
    raise InvalidInputError(
        f"point id {value!r} has type {type(value).__name__}; ids are unsigned integers or UUIDs"
    )


def lookup_id(value: Any) -> int | str | None:
    """A point id to look up; an id that is not a valid id finds nothing (`None`), as in
    qdrant-client's local mode."""
    try:
        return point_id(value)
    except InvalidInputError:
        return None


_KIND_MISMATCH = "Wrong input: Conversion between sparse and regular vectors failed"


def is_sparse(value: Any) -> bool:
    """A sparse vector (qdrant-client's or ferrovec's SparseVector, or its dict) or a document
    the core embeds into one (``models.Document``, ``ferrovec.Document``)?"""
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"indices", "values"}:
            return True
        document = isinstance(value.get("text"), str) and "model" in keys
        return document and keys <= {"text", "model", "options"}
    return (hasattr(value, "indices") and hasattr(value, "values")) or (
        hasattr(value, "text") and hasattr(value, "model")
    )


def dense_vector(value: Any, what: str) -> Any:
    """The default (unnamed) dense vector of a point or query: a list, a numpy array, or
    ``{"": vector}`` as LangChain sends it."""
    if isinstance(value, Mapping) and not is_sparse(value):
        names = list(value)
        if names == [""]:
            return value[""]
        unknown = [n for n in names if n != ""]
        raise InvalidInputError(f"Wrong input: Not existing vector name error: {unknown[0]}")
    if is_sparse(value):
        raise InvalidInputError(_KIND_MISMATCH)
    if value is None:
        raise InvalidInputError(f"{what}: a vector is required")
    return value


def named_vectors(
    value: Any, names: Sequence[str], what: str, sparse: Sequence[str] = ()
) -> dict[str, Any]:
    """The named vectors of one point (a dict name -> vector), checked against the
    collection's dense `names` and `sparse` names; a point may have only some of them (or
    none), as in Qdrant. A bare vector is the unnamed dense one, if the collection has it."""
    if not isinstance(value, Mapping) or is_sparse(value):
        if value is None:
            raise InvalidInputError(f"{what}: a vector is required")
        if "" in names and not is_sparse(value):
            return {"": value}
        raise InvalidInputError(
            "Wrong input: Unnamed vectors are not allowed when a collection has named vectors "
            f"or multivectors: {list(names)}, {list(sparse)}"
        )
    for name, v in value.items():
        if name not in names and name not in sparse:
            raise InvalidInputError(f"Wrong input: Not existing vector name error: {name}")
        if (name in sparse) != is_sparse(v):
            raise InvalidInputError(_KIND_MISMATCH)
    return dict(value)


def by_name(
    points: Sequence[Mapping[str, Any]], dims: Mapping[str, int], sparse: Sequence[str] = ()
) -> dict[str, Any]:
    """Per-point dicts of named vectors as the native API takes them: one float32 matrix per
    dense name (a point without a vector some others have gets NaN there: absent), one list
    per sparse name (None where a point has none)."""
    out: dict[str, Any] = {}
    for n in dims:
        if any(n in p for p in points):
            absent = [float("nan")] * dims[n]
            out[n] = native._as_matrix([p[n] if n in p else absent for p in points])
    for n in sparse:
        if any(n in p for p in points):
            out[n] = [p.get(n) for p in points]
    return out


def using_of(using: Any) -> str | None:
    """The vector a query uses (``None`` or ``""``: the unnamed one)."""
    if using is None or using == "":
        return None
    if not isinstance(using, str):
        raise InvalidInputError(f"using={using!r} must be a vector name")
    return using


def vector_params(config: Any, allow_none: bool = False) -> list[tuple[str, int, str, Any]]:
    """(name, size, native distance, its hnsw_config) of each vector of a collection's vectors
    config: one VectorParams (the unnamed vector, name ""), ``{"": VectorParams}``, or a dict of
    named VectorParams. With `allow_none` (the collection has sparse vectors), none at all."""
    if config is None or (allow_none and config == {}):
        if allow_none:
            return []
        raise InvalidInputError("vectors_config is required (or sparse_vectors_config)")
    items = list(config.items()) if isinstance(config, Mapping) else [("", config)]
    if not items:
        raise InvalidInputError("vectors_config names no vector")
    if len(items) > 1 and "" in dict(items):
        raise InvalidInputError('the unnamed vector "" cannot be combined with named vectors')
    specs = []
    for name, params in items:
        if not isinstance(name, str):
            raise InvalidInputError(f"vector name {name!r} is not a string")
        size = field(params, "size")
        distance = dump(field(params, "distance"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise InvalidInputError(f"vector size must be a positive integer, got {size!r}")
        if distance not in DISTANCES:
            raise InvalidInputError(
                f"unknown distance {distance!r}; expected one of {list(DISTANCES)}"
            )
        if field(params, "multivector_config") is not None:
            raise UnsupportedError("VectorParams.multivector_config is not supported yet")
        specs.append((name, size, DISTANCES[distance], field(params, "hnsw_config")))
    return specs


def vectors_on_disk(config: Any) -> bool | None:
    """The ``on_disk`` of a collection's VectorParams (ferrovec's `vectors_on_disk`): where
    indexed segments keep the f32 vectors. Each point's vectors are stored together, so named
    vectors must agree."""
    if config is None:
        return None
    params = config.values() if isinstance(config, Mapping) else [config]
    flags = {field(p, "on_disk") for p in params}
    if len(flags) > 1:
        raise UnsupportedError(
            "named vectors with different on_disk are not supported: ferrovec stores a point's "
            "vectors together, so they are all on disk or all resident"
        )
    flag = flags.pop() if flags else None
    if flag is not None and not isinstance(flag, bool):
        raise InvalidInputError(f"VectorParams.on_disk must be a bool, got {flag!r}")
    return flag


def payload_selector(with_payload: Any) -> Any:
    """The native selector for `with_payload`: a bool, a list of keys (paths such as `a.b`,
    `a[].b`), or ``{"exclude": [...]}``."""
    if with_payload is None or with_payload is True:
        return True
    if with_payload is False:
        return False
    if isinstance(with_payload, str):
        raise InvalidInputError(
            "with_payload must be a bool, a list of payload keys or a PayloadSelector, "
            f"got a str: {with_payload!r}"
        )
    if isinstance(with_payload, Sequence):
        return list(with_payload)
    include = field(with_payload, "include")
    if include is not None:
        return list(include)
    exclude = field(with_payload, "exclude")
    if exclude is not None:
        return {"exclude": list(exclude)}
    raise InvalidInputError(f"with_payload={with_payload!r} is not a payload selector")


def vector_selector(with_vectors: Any) -> bool | list[str]:
    """Which vectors results carry: all (True), none (False), or the named ones listed."""
    if isinstance(with_vectors, bool) or with_vectors is None:
        return bool(with_vectors)
    if isinstance(with_vectors, Sequence) and not isinstance(with_vectors, str):
        return [str(n) for n in with_vectors]
    raise InvalidInputError(f"with_vectors={with_vectors!r} is not a vector selector")


def vector_out(v: Any, selector: bool | list[str] = True) -> Any:
    """A result's vector as qdrant-client gives it: a list of floats for the unnamed vector, a
    dict of them for named vectors (only the names selected); ``{}`` for a point whose
    vectors were removed (the native API gives None for an absent unnamed vector)."""
    if selector is False:
        return None
    if v is None:
        return {}
    if isinstance(v, Mapping):
        wanted = list(v) if selector is True else [n for n in selector if n in v]
        if wanted == [""]:  # only the unnamed vector: a bare list, as qdrant-client gives it
            return _one_vector(v[""])
        return {n: _one_vector(v[n]) for n in wanted}
    if selector is not True and "" not in selector:
        return None
    return v.tolist() if isinstance(v, np.ndarray) else [float(x) for x in v]


def _one_vector(v: Any) -> Any:
    if isinstance(v, native.SparseVector):
        return make(out.SparseVector, indices=v.indices, values=v.values)
    return v.tolist()


def order_value(v: float | None) -> int | float | None:
    """An order_by value as Qdrant gives it: integral values as ints."""
    if v is None:
        return None
    return int(v) if float(v).is_integer() else v


def query_json(q: Any) -> Any:
    """A query (a vector, a sparse vector, a document, a point id or a query model) as the
    JSON of Qdrant's universal query, point ids canonical."""
    if q is None:
        return None
    if isinstance(q, (bool, np.bool_)):
        raise InvalidInputError(f"query {q!r} is not a vector, a point id or a query")
    if isinstance(q, (int, np.integer, str, uuid.UUID)):
        return point_id(q)
    if isinstance(q, np.ndarray):
        return q.tolist()
    if isinstance(q, native.SparseVector):
        return {"indices": q.indices, "values": q.values}
    if isinstance(q, (list, tuple)) and all(isinstance(x, (int, float)) for x in q):
        return [float(x) for x in q]
    kind = type(q).__name__
    if kind in ("TextQuery", "RelevanceFeedbackQuery"):
        raise UnsupportedError(f"{kind} is not supported yet")
    return _query_ids(dump(q))


def _vector_input(v: Any) -> Any:
    if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        return point_id(v)
    return v


def _pairs(p: Any) -> Any:
    def one(x: Any) -> Any:
        if not isinstance(x, dict):
            return x
        return {k: _vector_input(v) if k in ("positive", "negative") else v for k, v in x.items()}

    return [one(x) for x in p] if isinstance(p, list) else one(p)


def _query_ids(q: Any) -> Any:
    """The point ids a query names (as its vectors, or examples), canonical."""
    if not isinstance(q, dict):
        return _vector_input(q)
    q = dict(q)
    if "nearest" in q:
        q["nearest"] = _vector_input(q["nearest"])
    if isinstance(q.get("recommend"), dict):
        r = dict(q["recommend"])
        for k in ("positive", "negative"):
            if isinstance(r.get(k), list):
                r[k] = [_vector_input(v) for v in r[k]]
        q["recommend"] = r
    if isinstance(q.get("discover"), dict):
        d = dict(q["discover"])
        if "target" in d:
            d["target"] = _vector_input(d["target"])
        if d.get("context") is not None:
            d["context"] = _pairs(d["context"])
        q["discover"] = d
    if "context" in q and not isinstance(q.get("discover"), dict):
        q["context"] = _pairs(q["context"])
    return q


_FAST: dict[type, dict[str, Any] | None] = {}


def make(cls: Any, **fields: Any) -> Any:
    """A result object from fields this module built itself, without re-validating them (as
    qdrant-client's local mode builds its results). pydantic's `model_construct` costs 5-7 us
    per object, a third of a whole query's time in the compatibility layer; filling the
    instance the way `model_construct` does is ten times cheaper. Checked against
    `model_construct` once per class, which is used if they ever differ."""
    defaults = _FAST.get(cls, ...)
    if defaults is ...:
        defaults = _fast_defaults(cls, fields)
    if defaults is None:
        construct = getattr(cls, "model_construct", None)
        return cls(**fields) if construct is None else construct(**fields)
    return _fill(cls, defaults, fields)


def _fill(cls: Any, defaults: dict[str, Any], fields: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    # In field order, as pydantic keeps them (`defaults` holds every field, in that order).
    values = {name: fields.get(name, default) for name, default in defaults.items()}
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(fields))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _fast_defaults(cls: Any, sample: dict[str, Any]) -> dict[str, Any] | None:
    """Every field of a pydantic model with its default (None where it has none; `make` is
    always given those), if filling instances directly gives what `model_construct` gives;
    else None (and `make` uses the slow path for `cls`)."""
    defaults: dict[str, Any] | None = None
    model_fields = getattr(cls, "model_fields", None)
    if model_fields is not None and not getattr(cls, "__private_attributes__", None):
        try:
            defaults = {
                name: None if f.is_required() else f.get_default(call_default_factory=True)
                for name, f in model_fields.items()
            }
            if set(sample) - set(defaults):
                return None
            fast = _fill(cls, defaults, sample)
            slow = cls.model_construct(**sample)
            same = fast == slow and fast.model_dump() == slow.model_dump()
            defaults = defaults if same else None
        except Exception:
            defaults = None
    _FAST[cls] = defaults
    return defaults


def scored_points(hits: Iterable[Any], selector: bool | list[str] = True) -> list[Any]:
    """Native hits as ScoredPoints. On the hot path of every query: the class check is made
    once per call, and each instance takes its field dict as it is (see `make`)."""
    cls = out.ScoredPoint
    fields = _FAST.get(cls)
    points = []
    for hit in hits:
        values = {
            "id": hit.id,
            "version": 0,
            "score": hit.score,
            "payload": hit.payload,
            "vector": None if selector is False else vector_out(hit.vector, selector),
            "shard_key": None,
            "order_value": order_value(hit.order_value),
        }
        if fields is None or len(fields) != len(values):
            points.append(make(cls, **values))
            fields = _FAST.get(cls)
            continue
        # Every field, in field order: what model_construct would set (checked in `make`).
        obj = _new(cls)
        _set(obj, "__dict__", values)
        _set(obj, "__pydantic_fields_set__", set(fields))
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        points.append(obj)
    return points


_new = object.__new__
_set = object.__setattr__


def record(rec: Any, selector: bool | list[str] = True) -> Any:
    return make(
        out.Record,
        id=rec.id,
        payload=rec.payload,
        vector=vector_out(rec.vector, selector),
        shard_key=None,
        order_value=None,
    )


def update_result() -> Any:
    return make(out.UpdateResult, operation_id=0, status=out.UpdateStatus.COMPLETED)


def filter_dict(flt: Any) -> dict[str, Any] | None:
    """A filter as Qdrant's JSON shape (the native API parses that)."""
    if flt is None:
        return None
    d = dump(flt)
    if not isinstance(d, dict):
        raise InvalidInputError(f"filter {flt!r} is not a Filter")
    return _canonical_ids(d)  # type: ignore[no-any-return]


def _canonical_ids(node: Any) -> Any:
    """`has_id` conditions with their UUIDs in canonical form, as stored (an id that is no
    valid id is kept as given, and matches nothing)."""
    if isinstance(node, list):
        return [_canonical_ids(v) for v in node]
    if not isinstance(node, dict):
        return node
    out_ = {}
    for k, v in node.items():
        if k == "has_id" and isinstance(v, list):
            out_[k] = [i if (c := lookup_id(i)) is None else c for i in v]
        else:
            out_[k] = _canonical_ids(v)
    return out_


def exclude_ids(flt: dict[str, Any] | None, ids: Iterable[int | str]) -> dict[str, Any] | None:
    """`flt` and none of `ids` (the points a query was given by id are not results)."""
    ids = list(ids)
    if not ids:
        return flt
    cond = {"has_id": ids}
    if flt is None:
        return {"must_not": [cond]}
    flt = dict(flt)
    must_not = flt.get("must_not")
    if must_not is None:
        flt["must_not"] = [cond]
    elif isinstance(must_not, list):
        flt["must_not"] = [*must_not, cond]
    else:
        flt["must_not"] = [must_not, cond]
    return flt


def selector(points: Any) -> tuple[list[int | str] | None, dict[str, Any] | None]:
    """A points selector as (ids, filter): a list of ids, PointIdsList, FilterSelector or a
    Filter."""
    if isinstance(points, Mapping):
        if "points" in points:
            return [point_id(i) for i in points["points"]], None
        if "filter" in points:
            return None, filter_dict(points["filter"])
        return None, filter_dict(points)
    if isinstance(points, (list, tuple)):
        return [point_id(i) for i in points], None
    ids = getattr(points, "points", None)
    if ids is not None:
        return [point_id(i) for i in ids], None
    if hasattr(points, "filter") and not hasattr(points, "must"):
        return None, filter_dict(points.filter)
    if hasattr(points, "must") or hasattr(points, "should"):
        return None, filter_dict(points)
    raise InvalidInputError(f"{points!r} is not a points selector (ids, PointIdsList or Filter)")
