"""Points: upserts (conditional ones too), uploads, deletes, payload and vector updates,
batched updates, and reads by id, scroll, count and facet."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import numpy as np

import ferrovec._native as native
from ferrovec._batch import last_wins, take
from ferrovec.errors import (
    InvalidInputError,
    PointNotFoundError,
)
from ferrovec.qdrant import convert as cv
from ferrovec.qdrant._base import _Base, _check_limit, _dims, _existing, _sparse

out = cv.out

Progress = Callable[[int, int], object]
_U64_END = 2**64


class _Points(_Base):
    def _write(
        self,
        col: native.Collection,
        ids: list[int | str],
        vectors: Any,
        payloads: list[Any] | None,
        when: tuple[dict[str, Any] | None, str] | None = None,
    ) -> None:
        """Upsert with qdrant-client's rules: a repeated id in one batch is written once, with
        its last vector and payload; zero vectors are taken under cosine. `when`: the
        (update_filter, update_mode) of a conditional upsert."""
        if not ids:
            return
        ids, vectors, payloads = last_wins(ids, vectors, payloads)
        if when is None:
            _upsert(col, ids, vectors, payloads)
            return
        with self._lock:  # the check and the write, as one step for this client
            keep = self._conditional(col, ids, *when)
            if len(keep) < len(ids):
                ids, vectors, payloads = take(ids, vectors, payloads, keep)
            if ids:
                _upsert(col, ids, vectors, payloads)

    @staticmethod
    def _conditional(
        col: native.Collection, ids: list[int | str], flt: dict[str, Any] | None, mode: str
    ) -> list[int]:
        """Positions in `ids` that a conditional upsert writes, by Qdrant's rules: an existing
        point only if it matches `flt` (and the mode is not insert_only), a new one unless the
        mode is update_only."""
        existing = _existing(col, ids)
        updatable = existing if flt is None else _existing(col, list(existing), flt)
        keep = []
        for n, pid in enumerate(ids):
            if pid in existing:
                if mode != "insert_only" and pid in updatable:
                    keep.append(n)
            elif mode != "update_only":
                keep.append(n)
        return keep

    def _points(
        self,
        points: Any,
        dims: dict[str, int] | None,
        as_array: bool = False,
        sparse: Sequence[str] = (),
    ) -> tuple[list[int | str], Any, list[Any] | None]:
        """(ids, vectors, payloads) of a list of PointStruct (or dicts) or a Batch; the vectors
        as one float32 array if `as_array`. For a collection of named vectors (`dims`: the
        dense ones' sizes; `sparse`: the sparse ones' names), the vectors are a dict of one
        array per dense name and one list per sparse name."""
        if dims is not None:
            return self._named_points(points, dims, sparse)
        if not isinstance(points, (list, tuple)) and cv.field(points, "ids") is not None:
            ids = [cv.point_id(i) for i in cv.field(points, "ids")]
            vectors = cv.dense_vector(cv.field(points, "vectors"), "Batch.vectors")
            payloads = cv.field(points, "payloads")
            if payloads is not None:
                payloads = list(payloads)
            if isinstance(vectors, np.ndarray):
                return ids, vectors, payloads
            return ids, [cv.dense_vector(v, "Batch.vectors") for v in vectors], payloads
        ids, vectors, payloads = [], [], []
        for i, p in enumerate(points):
            ids.append(cv.point_id(cv.field(p, "id")))
            vectors.append(cv.dense_vector(cv.field(p, "vector"), f"points[{i}].vector"))
            payloads.append(cv.field(p, "payload"))
        if as_array:
            try:
                return ids, native._as_matrix(vectors), payloads
            except ValueError:
                pass  # ragged or odd input: the upsert names the bad row
        return ids, vectors, payloads

    @staticmethod
    def _named_points(
        points: Any, dims: dict[str, int], sparse: Sequence[str] = ()
    ) -> tuple[list[int | str], dict[str, Any], list[Any] | None]:
        names = list(dims)
        if not isinstance(points, (list, tuple)) and cv.field(points, "ids") is not None:
            ids = [cv.point_id(i) for i in cv.field(points, "ids")]
            if not ids:
                return ids, {}, None
            given = _columns(cv.field(points, "vectors"), names, sparse, "Batch.vectors")
            payloads = cv.field(points, "payloads")
            if payloads is not None:
                payloads = list(payloads)
            return ids, given, payloads
        ids, per_point, plain_payloads = [], [], []
        for i, p in enumerate(points):
            ids.append(cv.point_id(cv.field(p, "id")))
            per_point.append(
                cv.named_vectors(cv.field(p, "vector"), names, f"points[{i}].vector", sparse)
            )
            plain_payloads.append(cv.field(p, "payload"))
        return ids, cv.by_name(per_point, dims, sparse), plain_payloads

    def upsert(
        self,
        collection_name: str,
        points: Any,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        update_mode: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Insert or replace points (a list of PointStruct, or a Batch). Writes are durable
        when this returns, whatever ``wait`` says. ``update_filter``: existing points are
        replaced only if they match it; ``update_mode``: "upsert" (default), "insert_only"
        or "update_only"."""
        col = self._col(collection_name)
        when = _condition(update_filter, update_mode)
        ids, vectors, payloads = self._points(points, _dims(col), sparse=_sparse(col))
        if not ids:
            raise InvalidInputError("Empty update request")
        self._write(col, ids, vectors, payloads, when)
        return cv.update_result()

    def upload_points(
        self,
        collection_name: str,
        points: Iterable[Any],
        batch_size: int = 64,
        parallel: int = 1,
        method: str | None = None,
        max_retries: int = 3,
        wait: bool = False,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        update_mode: Any = None,
        progress: Progress | bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Upsert points from an iterable in batches of ``batch_size`` (``update_filter`` and
        ``update_mode`` as in :meth:`upsert`). ``progress``: a callback ``(done, total_or_0)``
        or ``True`` for a bar on stderr."""
        col = self._col(collection_name)
        when = _condition(update_filter, update_mode)
        dims, sparse = _dims(col), _sparse(col)
        batches = (
            self._points(chunk, dims, as_array=True, sparse=sparse)
            for chunk in _chunks(points, batch_size)
        )
        self._upload(col, batches, when, _progress(progress, 0), overlap=True)

    def upload_records(self, collection_name: str, records: Iterable[Any], **kwargs: Any) -> None:
        """The older name of :meth:`upload_points` (Records have the same fields)."""
        self.upload_points(collection_name, records, **kwargs)

    def upload_collection(
        self,
        collection_name: str,
        vectors: Any,
        payload: Iterable[Any] | None = None,
        ids: Iterable[Any] | None = None,
        batch_size: int = 64,
        parallel: int = 1,
        method: str | None = None,
        max_retries: int = 3,
        wait: bool = False,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        update_mode: Any = None,
        progress: Progress | bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Upsert vectors (a 2-D numpy array is passed to the core without copies, a batch at a
        time), with optional payloads and ids (random UUIDs when ``ids`` is None);
        ``update_filter`` and ``update_mode`` as in :meth:`upsert`."""
        col = self._col(collection_name)
        when = _condition(update_filter, update_mode)
        batch_size = max(1, batch_size)
        dims, sparse = _dims(col), _sparse(col)
        blocks: Iterable[Any]
        if isinstance(vectors, Mapping) and dims is None:
            vectors = cv.dense_vector(vectors, "vectors")  # {"": vectors}
        if isinstance(vectors, Mapping):
            # Named vectors, one array (or list) per name: cut into batches of a dict each.
            arrays = _columns(vectors, list(dims or {}), sparse, "vectors")
            total = min(len(a) for a in arrays.values())
            if any(len(a) != total for a in arrays.values()):
                raise InvalidInputError("the named vectors hold different numbers of points")
            blocks = (
                {n: a[i : i + batch_size] for n, a in arrays.items()}
                for i in range(0, total, batch_size)
            )
            # Array blocks need no conversion to overlap with: each is written at once, in
            # this thread (handing it to a writer thread measured 30% slower).
            overlap = False
        elif isinstance(vectors, np.ndarray):
            total = len(vectors)
            blocks = (vectors[i : i + batch_size] for i in range(0, total, batch_size))
            overlap = False
        else:
            total = len(vectors) if hasattr(vectors, "__len__") else 0

            def rows_of(buf: list[Any]) -> Any:
                if dims is None:
                    return native._as_matrix([cv.dense_vector(v, "vectors") for v in buf])
                named = [cv.named_vectors(v, list(dims), "vectors", sparse) for v in buf]
                return cv.by_name(named, dims, sparse)

            blocks = (rows_of(chunk) for chunk in _chunks(vectors, batch_size))
            overlap = True
        ids_it = iter(ids) if ids is not None else None
        pay_it = iter(payload) if payload is not None else None

        def take(n: int) -> tuple[list[int | str], list[Any] | None]:
            if ids_it is None:
                bid: list[int | str] = [str(uuid.uuid4()) for _ in range(n)]
            else:
                # Plain unsigned ints as they are; anything else through the full check.
                bid = [
                    x if type(x) is int and 0 <= x < _U64_END else cv.point_id(x)
                    for x in itertools.islice(ids_it, n)
                ]
            bpay = None if pay_it is None else list(itertools.islice(pay_it, n))
            if len(bid) < n or (bpay is not None and len(bpay) < n):
                raise InvalidInputError(
                    "ids or payload ran out before vectors (they must be as long)"
                )
            return bid, bpay

        def batches() -> Iterator[tuple[list[int | str], Any, list[Any] | None]]:
            for block in blocks:
                n = len(next(iter(block.values()))) if isinstance(block, dict) else len(block)
                bid, bpay = take(n)
                yield bid, block, bpay

        self._upload(col, batches(), when, _progress(progress, total), overlap)

    def _upload(
        self,
        col: native.Collection,
        batches: Iterable[tuple[list[int | str], Any, list[Any] | None]],
        when: tuple[dict[str, Any] | None, str] | None,
        report: Callable[..., None],
        overlap: bool,
    ) -> None:
        """Write an upload's batches in order, reporting progress. With `overlap`, each batch
        is written on a second thread while the next is converted (the core releases the GIL
        while it writes and fsyncs); otherwise at once, here."""
        done = 0
        with _Writer(self._write, col, when, threaded=overlap) as writer:
            for ids, vectors, payloads in batches:
                writer.submit(ids, vectors, payloads)
                done += len(ids)
                report(done)
        report(done, final=True)

    def delete(
        self,
        collection_name: str,
        points_selector: Any,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        **kwargs: Any,
    ) -> Any:
        col = self._col(collection_name)
        ids, flt = cv.selector(points_selector)
        if ids == []:
            raise InvalidInputError("Empty update request")
        if ids is not None:
            col.delete(list(dict.fromkeys(ids)))
        else:
            col.delete(filter=flt)
        return cv.update_result()

    def set_payload(
        self,
        collection_name: str,
        payload: Mapping[str, Any],
        points: Any,
        key: str | None = None,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        **kwargs: Any,
    ) -> Any:
        # As on a Qdrant server, a None value removes its key; `key` is a path to the object
        # the keys are set in (`a.b`, `a[].b`, `a[0]`).
        self._payload_op(
            collection_name, points, "set_payload", cv.dump(payload), null_removes=True, key=key
        )
        return cv.update_result()

    def overwrite_payload(
        self, collection_name: str, payload: Mapping[str, Any], points: Any, **kwargs: Any
    ) -> Any:
        self._payload_op(collection_name, points, "overwrite_payload", cv.dump(payload))
        return cv.update_result()

    def delete_payload(
        self, collection_name: str, keys: Sequence[str], points: Any, **kwargs: Any
    ) -> Any:
        self._payload_op(collection_name, points, "delete_payload", list(keys))
        return cv.update_result()

    def clear_payload(self, collection_name: str, points_selector: Any, **kwargs: Any) -> Any:
        self._payload_op(collection_name, points_selector, "clear_payload")
        return cv.update_result()

    def _payload_op(
        self, collection_name: str, points: Any, op: str, *args: Any, **options: Any
    ) -> None:
        """A payload operation with Qdrant's rule for ids: the points that exist are updated,
        then PointNotFoundError names the first that does not (as the server answers 404)."""
        col = self._col(collection_name)
        ids, flt = cv.selector(points)
        if ids is None:
            getattr(col, op)(*args, filter=flt, **options)
            return
        if not ids:
            raise InvalidInputError("Empty update request")
        with self._lock:
            found = _existing(col, ids)
            present = [i for i in ids if i in found]
            if present:
                getattr(col, op)(*args, list(dict.fromkeys(present)), **options)
        missing = [i for i in ids if i not in found]
        if missing:
            raise PointNotFoundError(f"No point with id {missing[0]} found")

    def update_vectors(
        self,
        collection_name: str,
        points: Sequence[Any],
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        update_filter: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Replace the vectors of existing points (those matching ``update_filter``, if given),
        keeping their payloads and the named vectors not given (one logged write in the core
        per set of names given). As on a Qdrant server, the points that exist are updated,
        then PointNotFoundError names the first that does not."""
        col = self._col(collection_name)
        dims, sparse = _dims(col), _sparse(col)
        ids_asked = [cv.point_id(cv.field(p, "id")) for p in points]
        given: list[Any] = [
            cv.dense_vector(cv.field(p, "vector"), f"points[{i}].vector")
            if dims is None
            else cv.named_vectors(cv.field(p, "vector"), list(dims), f"points[{i}].vector", sparse)
            for i, p in enumerate(points)
        ]
        flt = cv.filter_dict(update_filter)
        # A repeated id: applied in order, so the last vector (of each name) wins.
        merged: dict[int | str, Any] = {}
        for pid, vec in zip(ids_asked, given):
            if dims is None:
                merged[pid] = vec
            else:
                merged.setdefault(pid, {}).update(vec)
        found = _existing(col, list(merged))
        keep = [pid for pid in merged if pid in found]
        if flt is not None:
            # Only the points that match; the core writes the rest in one logged step.
            matching = _existing(col, keep, flt)
            keep = [pid for pid in keep if pid in matching]
        if dims is None:
            if keep:
                col.update_vectors(
                    keep, native._as_matrix([merged[pid] for pid in keep]), allow_zero=True
                )
        else:
            groups: dict[tuple[str, ...], list[int | str]] = {}
            for pid in keep:
                groups.setdefault(tuple(sorted(merged[pid])), []).append(pid)
            for key, pids in groups.items():
                if not key:
                    continue  # no vectors given: nothing to change
                col.update_vectors(
                    pids,
                    {
                        k: [merged[pid][k] for pid in pids]
                        if k in sparse
                        else native._as_matrix([merged[pid][k] for pid in pids])
                        for k in key
                    },
                    allow_zero=True,
                )
        missing = [i for i in ids_asked if i not in found]
        if missing:
            raise PointNotFoundError(f"No point with id {missing[0]} found")
        return cv.update_result()

    def delete_vectors(
        self,
        collection_name: str,
        vectors: Sequence[str],
        points: Any,
        wait: bool = True,
        ordering: Any = None,
        shard_key_selector: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Remove the named vectors ``vectors`` from the points (ids or a filter): they keep
        their payloads and other vectors, and searches of those vectors no longer find them."""
        names = [str(v) for v in vectors]
        self._payload_op(collection_name, points, "delete_vectors", names)
        return cv.update_result()

    def batch_update_points(
        self, collection_name: str, update_operations: Sequence[Any], **kwargs: Any
    ) -> list[Any]:
        """Apply the operations in order (each is atomic on its own, as on a Qdrant server)."""
        results = []
        for op in update_operations:
            results.append(self._apply_operation(collection_name, op))
        return results

    def _apply_operation(self, collection_name: str, op: Any) -> Any:
        def part(name: str) -> Any:
            return cv.field(op, name)

        if part("upsert") is not None:
            return self.upsert(collection_name, cv.field(part("upsert"), "points"))
        if part("delete") is not None:
            return self.delete(collection_name, part("delete"))
        if part("set_payload") is not None:
            sp = part("set_payload")
            return self.set_payload(
                collection_name,
                cv.field(sp, "payload"),
                _payload_points(sp),
                key=cv.field(sp, "key"),
            )
        if part("overwrite_payload") is not None:
            sp = part("overwrite_payload")
            return self.overwrite_payload(
                collection_name, cv.field(sp, "payload"), _payload_points(sp)
            )
        if part("delete_payload") is not None:
            dp = part("delete_payload")
            return self.delete_payload(collection_name, cv.field(dp, "keys"), _payload_points(dp))
        if part("clear_payload") is not None:
            return self.clear_payload(collection_name, part("clear_payload"))
        if part("update_vectors") is not None:
            return self.update_vectors(collection_name, cv.field(part("update_vectors"), "points"))
        if part("delete_vectors") is not None:
            dv = part("delete_vectors")
            return self.delete_vectors(
                collection_name, list(cv.field(dv, "vector") or []), _payload_points(dv)
            )
        raise InvalidInputError(f"unknown update operation {op!r}")

    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[Any],
        with_payload: Any = True,
        with_vectors: Any = False,
        **kwargs: Any,
    ) -> list[Any]:
        col = self._col(collection_name)
        sel = cv.payload_selector(with_payload)
        wanted = [i for i in (cv.lookup_id(x) for x in ids) if i is not None]
        vsel = cv.vector_selector(with_vectors)
        recs = col.get(wanted, with_payload=sel, with_vectors=bool(vsel))
        return [cv.record(r, vsel) for r in recs]

    def scroll(
        self,
        collection_name: str,
        scroll_filter: Any = None,
        limit: int = 10,
        order_by: Any = None,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        **kwargs: Any,
    ) -> tuple[list[Any], Any]:
        _check_limit("limit", limit, 1)
        col = self._col(collection_name)
        sel = cv.payload_selector(with_payload)
        if order_by is not None and offset is not None:
            raise InvalidInputError(
                "Offset is not supported in conjunction with `order_by` scroll parameter"
            )
        vsel = cv.vector_selector(with_vectors)
        start = None if offset is None else cv.lookup_id(offset)
        if offset is not None and start is None:
            return [], None  # an offset that is no valid id finds nothing, as in local mode
        recs, nxt = col.scroll(
            limit,
            start,
            filter=cv.filter_dict(scroll_filter),
            order_by=cv.dump(order_by),
            with_payload=sel,
            with_vectors=bool(vsel),
        )
        return [cv.record(r, vsel) for r in recs], nxt

    def count(
        self, collection_name: str, count_filter: Any = None, exact: bool = True, **kwargs: Any
    ) -> Any:
        col = self._col(collection_name)
        flt = cv.filter_dict(count_filter)
        return cv.make(out.CountResult, count=col.count(filter=flt) if flt else len(col))

    def facet(
        self,
        collection_name: str,
        key: str,
        facet_filter: Any = None,
        limit: int = 10,
        exact: bool = False,
        **kwargs: Any,
    ) -> Any:
        _check_limit("limit", limit, 1)
        col = self._col(collection_name)
        hits = col.facet(key, filter=cv.filter_dict(facet_filter), limit=limit)
        return out.FacetResponse(hits=[out.FacetValueHit(value=v, count=c) for v, c in hits])


def _columns(vectors: Any, names: list[str], sparse: Sequence[str], what: str) -> dict[str, Any]:
    """Named vectors given a column per name (a Batch's, upload_collection's): a float32
    matrix per dense name, the list as given per sparse name."""
    if not isinstance(vectors, Mapping):
        if "" in names and vectors is not None:
            vectors = {"": vectors}
        else:
            raise InvalidInputError(
                "Wrong input: Unnamed vectors are not allowed when a collection has named "
                f"vectors or multivectors: {names}, {list(sparse)}"
            )
    out_: dict[str, Any] = {}
    for n, v in vectors.items():
        if n in sparse:
            out_[n] = list(v)
        elif n in names:
            out_[n] = native._as_matrix(v)
        else:
            raise InvalidInputError(f"Wrong input: Not existing vector name error: {n}")
    return out_


def _condition(update_filter: Any, update_mode: Any) -> tuple[dict[str, Any] | None, str] | None:
    """A conditional upsert's (filter, mode), or None for a plain one."""
    mode = cv.dump(update_mode) or "upsert"
    if mode not in ("upsert", "insert_only", "update_only"):
        raise InvalidInputError(f"unknown update_mode {update_mode!r}")
    if update_filter is None and mode == "upsert":
        return None
    return cv.filter_dict(update_filter), mode


class _Writer:
    """Writes an upload's batches on one background thread (or, not `threaded`, at once)
    while the caller converts the next: the core releases the GIL while it writes and fsyncs,
    so the two overlap. Batches are written in order, one at a time; the first error stops the
    upload and is raised (the batches before it are written, as with qdrant-client's
    uploads)."""

    def __init__(
        self,
        write: Callable[..., None],
        col: native.Collection,
        when: tuple[dict[str, Any] | None, str] | None = None,
        threaded: bool = True,
    ) -> None:
        self._write = write
        self._col = col
        self._when = when
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferrovec-upload")
            if threaded
            else None
        )
        self._pending: Future[None] | None = None

    def submit(self, *batch: Any) -> None:
        self._wait()
        if self._pool is None:
            self._write(self._col, *batch, self._when)
            return
        self._pending = self._pool.submit(self._write, self._col, *batch, self._when)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


def _upsert(
    col: native.Collection, ids: list[int | str], vectors: Any, payloads: list[Any] | None
) -> None:
    """The native upsert with qdrant-client's leniency: zero vectors under cosine, and payload
    values that are not JSON (dates, UUIDs, models, enums) turned into Qdrant's JSON shape as
    the native conversion meets them (`cv.dump`), so plain JSON payloads cost no walk here."""
    col.upsert(ids, vectors, payloads, allow_zero=True, json_default=cv.dump)


def _payload_points(op: Any) -> Any:
    """The selector of a SetPayload/DeletePayload operation (ids in `points` or `filter`)."""
    ids = cv.field(op, "points")
    if ids is not None:
        return list(ids)
    return cv.field(op, "filter")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """`items` in lists of `size` (the last may be shorter)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, max(1, size))):
        yield chunk


def _progress(progress: Progress | bool | None, total: int) -> Callable[..., None]:
    """A reporter for long uploads: a callback, or ``True`` for a line on stderr."""
    if not progress:
        return lambda done, final=False: None
    if callable(progress):
        cb = progress

        def call(done: int, final: bool = False) -> None:
            cb(done, total)

        return call
    import sys

    started = datetime.now(timezone.utc)

    def bar(done: int, final: bool = False) -> None:
        secs = max((datetime.now(timezone.utc) - started).total_seconds(), 1e-9)
        of = f"/{total:,}" if total else ""
        end = "\n" if final else "\r"
        sys.stderr.write(f"uploaded {done:,}{of} points ({done / secs:,.0f}/s){end}")
        sys.stderr.flush()

    return bar
