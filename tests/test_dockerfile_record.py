"""``Record``, the immutable value base of the front-end's instructions and plans."""

from __future__ import annotations

import pytest

from builder.dockerfile.record import Record


class Point(Record):
    x: int
    y: int = 0


class Point3(Point):
    z: int = 5


def test_construction_defaults_and_inheritance() -> None:
    assert (Point(1).x, Point(1).y) == (1, 0)
    p = Point3(1, 2, z=3)
    assert (p.x, p.y, p.z) == (1, 2, 3) and Point3._fields == ("x", "y", "z")
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    with pytest.raises(TypeError):
        Point()
    with pytest.raises(TypeError):
        Point(1, x=2)
    with pytest.raises(TypeError):
        Point(1, w=2)
    with pytest.raises(TypeError):
        Point(1, 2, 3)


def test_immutable_equal_hashable_replace() -> None:
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5
    assert p == Point(1, 2) and p != Point(1, 3) and p != Point3(1, 2)
    assert len({p, Point(1, 2)}) == 1
    q = p.replace(y=7)
    assert (q.x, q.y, p.y) == (1, 7, 2) and type(q) is Point
    with pytest.raises(TypeError):
        p.replace(w=1)
