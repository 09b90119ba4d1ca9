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
