"""The core crate's modules import each other without a circle (`scripts/house.py` reads the
graph from the code; a circle means two modules own one concept between them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_house():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("house", REPO / "scripts" / "house.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_core_has_no_import_circle() -> None:
    house = load_house()
    graph = house.core_graph()
    assert graph.get("collection/mod.rs"), "the graph was read"
    assert house.circles(graph) == []


def test_a_circle_is_found_when_there_is_one() -> None:
    house = load_house()
    assert house.circles({"a.rs": {"b.rs"}, "b.rs": {"c.rs"}, "c.rs": {"a.rs"}}) == [
        ["a.rs", "b.rs", "c.rs"]
    ]
