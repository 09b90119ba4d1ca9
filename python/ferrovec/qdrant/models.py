"""Light stand-ins for ``qdrant_client.models``, used by :class:`ferrovec.QdrantClient` when
qdrant-client is not installed.

They have the field names and defaults of qdrant-client's models, so code written against
qdrant-client reads results the same way (``hit.id``, ``hit.score``, ``info.config.params``).
When qdrant-client is installed the client returns its own types instead; either kind (or a
plain dict in Qdrant's JSON shape) is accepted as input.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar


class _Model:
    """A keyword-constructed record with qdrant-client's field names; ``model_dump`` gives the
    JSON shape Qdrant uses."""

    _fields: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        for name, default in self._fields.items():
            value = kwargs.get(name, default)
            setattr(self, name, list(value) if isinstance(value, list) else value)

    def model_dump(self, exclude_none: bool = False, **_: Any) -> dict[str, Any]:
        out = {}
        for name in self._fields:
            value = _dump(getattr(self, name), exclude_none)
            if value is None and exclude_none:
                continue
            out[name] = value
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.model_dump() == other.model_dump()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields)
        return f"{type(self).__name__}({args})"


def _dump(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, _Model):
        return value.model_dump(exclude_none)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_dump(v, exclude_none) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, exclude_none) for k, v in value.items()}
    return value


def _model(__name: str, **fields: Any) -> type[_Model]:
    return type(__name, (_Model,), {"_fields": fields, "__module__": __name__})


class ScalarType(str, Enum):
    INT8 = "int8"


class Disabled(str, Enum):
    DISABLED = "Disabled"


class Distance(str, Enum):
    COSINE = "Cosine"
    EUCLID = "Euclid"
    DOT = "Dot"
    MANHATTAN = "Manhattan"


class Modifier(str, Enum):
    NONE = "none"
    IDF = "idf"


class Fusion(str, Enum):
    RRF = "rrf"
    DBSF = "dbsf"


class Sample(str, Enum):
    RANDOM = "random"


class RecommendStrategy(str, Enum):
    AVERAGE_VECTOR = "average_vector"
    BEST_SCORE = "best_score"
    SUM_SCORES = "sum_scores"


class UpdateStatus(str, Enum):
    ACKNOWLEDGED = "acknowledged"
    COMPLETED = "completed"


class CollectionStatus(str, Enum):
    GREEN = "green"
    YELLOW = "yellow"
    GREY = "grey"
    RED = "red"


class OptimizersStatusOneOf(str, Enum):
    OK = "ok"


class PayloadSchemaType(str, Enum):
    KEYWORD = "keyword"
    INTEGER = "integer"
    FLOAT = "float"
    GEO = "geo"
    TEXT = "text"
    BOOL = "bool"
    DATETIME = "datetime"
    UUID = "uuid"


# Inputs: points, selectors, filters, parameters.
PointStruct = _model("PointStruct", id=None, vector=None, payload=None)
Batch = _model("Batch", ids=None, vectors=None, payloads=None)
PointVectors = _model("PointVectors", id=None, vector=None)
PointIdsList = _model("PointIdsList", points=None, shard_key=None)
FilterSelector = _model("FilterSelector", filter=None, shard_key=None)
Filter = _model("Filter", should=None, min_should=None, must=None, must_not=None)
FieldCondition = _model(
    "FieldCondition",
    key=None,
    match=None,
    range=None,
    geo_bounding_box=None,
    geo_radius=None,
    geo_polygon=None,
    values_count=None,
    is_empty=None,
    is_null=None,
)
MatchValue = _model("MatchValue", value=None)
MatchAny = _model("MatchAny", any=None)
MatchExcept = _model("MatchExcept", **{"except": None})
MatchText = _model("MatchText", text=None)
Range = _model("Range", lt=None, gt=None, gte=None, lte=None)
DatetimeRange = _model("DatetimeRange", lt=None, gt=None, gte=None, lte=None)
HasIdCondition = _model("HasIdCondition", has_id=None)
IsEmptyCondition = _model("IsEmptyCondition", is_empty=None)
IsNullCondition = _model("IsNullCondition", is_null=None)
PayloadField = _model("PayloadField", key=None)
VectorParams = _model(
    "VectorParams",
    size=None,
    distance=None,
    hnsw_config=None,
    quantization_config=None,
    on_disk=None,
    datatype=None,
    multivector_config=None,
)
HnswConfigDiff = _model(
    "HnswConfigDiff",
    m=None,
    ef_construct=None,
    full_scan_threshold=None,
    max_indexing_threads=None,
    on_disk=None,
    payload_m=None,
    inline_storage=None,
)
OptimizersConfigDiff = _model(
    "OptimizersConfigDiff",
    deleted_threshold=None,
    vacuum_min_vector_number=None,
    default_segment_number=None,
    max_segment_size=None,
    memmap_threshold=None,
    indexing_threshold=None,
    flush_interval_sec=None,
    max_optimization_threads=None,
)
SearchParams = _model(
    "SearchParams", hnsw_ef=None, exact=False, quantization=None, indexed_only=False, acorn=None
)
PayloadSelectorInclude = _model("PayloadSelectorInclude", include=None)
PayloadSelectorExclude = _model("PayloadSelectorExclude", exclude=None)
NearestQuery = _model("NearestQuery", nearest=None, mmr=None)
QueryRequest = _model(
    "QueryRequest",
    shard_key=None,
    prefetch=None,
    query=None,
    using=None,
    filter=None,
    params=None,
    score_threshold=None,
    limit=None,
    offset=None,
    with_vector=None,
    with_payload=None,
    lookup_from=None,
)
SearchRequest = _model(
    "SearchRequest",
    shard_key=None,
    vector=None,
    filter=None,
    params=None,
    limit=10,
    offset=None,
    with_payload=None,
    with_vector=None,
    score_threshold=None,
)
NamedVector = _model("NamedVector", name=None, vector=None)
SparseVector = _model("SparseVector", indices=None, values=None)
NamedSparseVector = _model("NamedSparseVector", name=None, vector=None)
Document = _model("Document", text=None, model=None, options=None)
SparseIndexParams = _model(
    "SparseIndexParams", full_scan_threshold=None, on_disk=None, datatype=None
)
SparseVectorParams = _model("SparseVectorParams", index=None, modifier=None)
Prefetch = _model(
    "Prefetch",
    prefetch=None,
    query=None,
    using=None,
    filter=None,
    params=None,
    score_threshold=None,
    limit=None,
    lookup_from=None,
)
LookupLocation = _model("LookupLocation", collection=None, vector=None, shard_key=None)
Mmr = _model("Mmr", diversity=None, candidates_limit=None)
FusionQuery = _model("FusionQuery", fusion=None)
Rrf = _model("Rrf", k=None, weights=None)
RrfQuery = _model("RrfQuery", rrf=None)
FormulaQuery = _model("FormulaQuery", formula=None, defaults=None)
RecommendInput = _model("RecommendInput", positive=None, negative=None, strategy=None)
RecommendQuery = _model("RecommendQuery", recommend=None)
ContextPair = _model("ContextPair", positive=None, negative=None)
DiscoverInput = _model("DiscoverInput", target=None, context=None)
DiscoverQuery = _model("DiscoverQuery", discover=None)
ContextQuery = _model("ContextQuery", context=None)
OrderByQuery = _model("OrderByQuery", order_by=None)
SampleQuery = _model("SampleQuery", sample=None)
OrderBy = _model("OrderBy", key=None, direction=None, start_from=None)

# Results.
ScoredPoint = _model(
    "ScoredPoint",
    id=None,
    version=0,
    score=0.0,
    payload=None,
    vector=None,
    shard_key=None,
    order_value=None,
)
Record = _model("Record", id=None, payload=None, vector=None, shard_key=None, order_value=None)
QueryResponse = _model("QueryResponse", points=None)
PointGroup = _model("PointGroup", hits=None, id=None, lookup=None)
GroupsResult = _model("GroupsResult", groups=None)
UpdateResult = _model("UpdateResult", operation_id=None, status=None)
CountResult = _model("CountResult", count=0)
FacetValueHit = _model("FacetValueHit", value=None, count=0)
FacetResponse = _model("FacetResponse", hits=None)
CollectionDescription = _model("CollectionDescription", name=None)
CollectionsResponse = _model("CollectionsResponse", collections=None)
AliasDescription = _model("AliasDescription", alias_name=None, collection_name=None)
CollectionsAliasesResponse = _model("CollectionsAliasesResponse", aliases=None)
CreateAlias = _model("CreateAlias", collection_name=None, alias_name=None)
CreateAliasOperation = _model("CreateAliasOperation", create_alias=None)
DeleteAlias = _model("DeleteAlias", alias_name=None)
DeleteAliasOperation = _model("DeleteAliasOperation", delete_alias=None)
RenameAlias = _model("RenameAlias", old_alias_name=None, new_alias_name=None)
RenameAliasOperation = _model("RenameAliasOperation", rename_alias=None)
SnapshotDescription = _model(
    "SnapshotDescription", name=None, creation_time=None, size=0, checksum=None
)
CollectionParams = _model(
    "CollectionParams",
    vectors=None,
    shard_number=1,
    sharding_method=None,
    replication_factor=1,
    write_consistency_factor=1,
    read_fan_out_factor=None,
    on_disk_payload=True,
    sparse_vectors=None,
)
HnswConfig = _model(
    "HnswConfig",
    m=16,
    ef_construct=100,
    full_scan_threshold=10000,
    max_indexing_threads=0,
    on_disk=False,
    payload_m=None,
    inline_storage=None,
)
OptimizersConfig = _model(
    "OptimizersConfig",
    deleted_threshold=0.2,
    vacuum_min_vector_number=1000,
    default_segment_number=0,
    max_segment_size=None,
    memmap_threshold=None,
    indexing_threshold=20000,
    flush_interval_sec=5,
    max_optimization_threads=None,
)
ScalarQuantizationConfig = _model(
    "ScalarQuantizationConfig", type="int8", quantile=None, always_ram=None
)
ScalarQuantization = _model("ScalarQuantization", scalar=None)
BinaryQuantizationConfig = _model(
    "BinaryQuantizationConfig", always_ram=None, encoding=None, query_encoding=None
)
BinaryQuantization = _model("BinaryQuantization", binary=None)
ProductQuantization = _model("ProductQuantization", product=None)
QuantizationSearchParams = _model(
    "QuantizationSearchParams", ignore=False, rescore=None, oversampling=None
)
WalConfig = _model("WalConfig", wal_capacity_mb=32, wal_segments_ahead=0, wal_retain_closed=1)
CollectionConfig = _model(
    "CollectionConfig",
    params=None,
    hnsw_config=None,
    optimizer_config=None,
    wal_config=None,
    quantization_config=None,
    strict_mode_config=None,
    metadata=None,
)
PayloadIndexInfo = _model("PayloadIndexInfo", data_type=None, params=None, points=0)
CollectionInfo = _model(
    "CollectionInfo",
    status=None,
    optimizer_status=None,
    warnings=None,
    indexed_vectors_count=0,
    points_count=0,
    segments_count=0,
    config=None,
    payload_schema=None,
    update_queue=None,
)
