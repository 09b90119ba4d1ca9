"""float32 C-contiguous arrays cross into Rust without a copy; anything else is converted once."""

from __future__ import annotations

import numpy as np
import pytest

import ferrovec
from ferrovec._native import _matrix_address


def test_float32_c_contiguous_is_read_in_place():
    a = np.zeros((100, 8), dtype=np.float32)
    assert _matrix_address(a) == a.ctypes.data
    view = a[10:20]  # a contiguous slice is still in place
    assert _matrix_address(view) == view.ctypes.data


def test_other_layouts_are_converted():
    a = np.zeros((100, 8), dtype=np.float64)
    assert _matrix_address(a) != a.ctypes.data
    f = np.asfortranarray(np.zeros((100, 8), dtype=np.float32))
    assert _matrix_address(f) != f.ctypes.data


def test_lists_of_floats_read_like_numpy() -> None:
    """The fast path for lists of Python floats gives what numpy's conversion gives; other
    input (ints, ragged rows, tuples) still goes through numpy with its errors."""
    from ferrovec._native import _as_matrix

    rng = np.random.default_rng(1)
    rows = rng.standard_normal((7, 5)).tolist()
    assert np.array_equal(_as_matrix(rows), np.asarray(rows, dtype=np.float32))
    assert _as_matrix(rows).dtype == np.float32 and _as_matrix(rows).shape == (7, 5)
    mixed = [[1, 2.5, 3], [4.0, 5, 6.25]]
    assert np.array_equal(_as_matrix(mixed), np.asarray(mixed, dtype=np.float32))
    assert np.array_equal(_as_matrix([(1.0, 2.0)]), np.array([[1.0, 2.0]], dtype=np.float32))
    with pytest.raises(ferrovec.InvalidInputError):
        _as_matrix([[1.0, 2.0], [3.0]])
    with pytest.raises(ferrovec.InvalidInputError):
        _as_matrix([[1.0, "x"]])


def test_a_query_as_a_list_of_floats_reads_like_numpy(db) -> None:
    """One query given as a list of Python floats (the fast path) scores exactly as the same
    query as a float32 array; ints, empty and nested lists still go through numpy's checks."""
    col = db.create_collection("c", dim=5, distance="dot")
    rng = np.random.default_rng(2)
    col.upsert(list(range(50)), rng.standard_normal((50, 5)).astype(np.float32))
    q = rng.standard_normal(5).tolist()
    as_list = [(h.id, h.score) for h in col.search(q, 5)]
    as_array = [(h.id, h.score) for h in col.search(np.asarray(q, dtype=np.float32), 5)]
    assert as_list == as_array
    assert [h.id for h in col.search([1, 0, 0, 0, 0], 3)] == [
        h.id for h in col.search([1.0, 0.0, 0.0, 0.0, 0.0], 3)
    ]
    with pytest.raises(ferrovec.InvalidInputError, match="dimension"):
        col.search([1.0, 2.0], 3)
    with pytest.raises(ferrovec.InvalidInputError):
        col.search([], 3)
    with pytest.raises(ferrovec.InvalidInputError, match="1-D"):
        col.search([[1.0] * 5], 3)
