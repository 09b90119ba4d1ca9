"""float32 C-contiguous arrays cross into Rust without a copy; anything else is converted once."""

from __future__ import annotations

import numpy as np

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
