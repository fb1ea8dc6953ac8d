"""hubcore.records: attrs-like records built without generating code."""

from __future__ import annotations

import copy
import pickle
from typing import ClassVar

import pytest

from hubcore.records import FrozenRecordError, Record, asdict, field, fields, replace


class Point(Record):
    x: int
    y: int = 0
    tags: list[str] = field(factory=list, eq=False, repr=False)
    UNIT: ClassVar[str] = "px"


class Point3(Point):
    z: int = 0


class Box(Record, frozen=False):
    _items: dict[str, int] = field(factory=dict, alias="items")
    label: str = ""


class Normalised(Record):
    text: str
    size: int = field(default=0, metadata={"doc": "bytes"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", self.text.lower())


class Nested(Record):
    point: Point
    points: tuple[Point, ...] = ()
    named: dict[str, Point] = field(factory=dict)


def test_fields_in_order_with_defaults_and_class_vars_left_out() -> None:
    assert [f.name for f in fields(Point)] == ["x", "y", "tags"]
    assert [f.name for f in fields(Point3(1))] == ["x", "y", "tags", "z"]
    assert Point.UNIT == "px"
    assert "UNIT" not in {f.name for f in fields(Point)}
    assert fields(Normalised)[1].metadata == {"doc": "bytes"}


def test_init_binds_positional_and_keyword_arguments() -> None:
    p = Point(1, y=2)
    assert (p.x, p.y, p.tags) == (1, 2, [])
    assert Point3(1, 2, ["a"], 3).z == 3
    assert Point(1).tags is not Point(1).tags  # a fresh default for each record


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing the argument 'x'"),
        ((1,), {"x": 2}, "two values for 'x'"),
        ((1,), {"w": 2}, "unexpected arguments: w"),
        ((1, 2, [], 4), {}, "takes 3 arguments, 4 given"),
    ],
)
def test_init_refuses_what_a_function_would(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_frozen_records_refuse_assignment_and_are_hashable() -> None:
    p = Point(1)
    with pytest.raises(FrozenRecordError, match="frozen"):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.x  # type: ignore[misc]
    assert hash(Point(1, tags=["a"])) == hash(Point(1))
    assert {Point(1), Point(1, tags=["b"])} == {Point(1)}


def test_mutable_records_take_assignment_and_are_not_hashable() -> None:
    box = Box(items={"a": 1})
    box.label = "b"
    assert box._items == {"a": 1}
    assert box.label == "b"
    with pytest.raises(TypeError):
        hash(box)


def test_equality_is_by_class_and_compared_fields() -> None:
    assert Point(1, 2, ["a"]) == Point(1, 2, ["b"])  # tags: eq=False
    assert Point(1, 2) != Point(1, 3)
    assert Point(1) != Point3(1)  # same fields, another class
    assert Point(1) != (1, 0)
    assert Box(items={"a": 1}) == Box(items={"a": 1})


def test_repr_shows_the_fields_that_ask_for_it() -> None:
    assert repr(Point(1, 2, ["a"])) == "Point(x=1, y=2)"
    assert repr(Box(label="b")) == "Box(_items={}, label='b')"


def test_post_init_runs_after_the_fields_and_again_on_replace() -> None:
    n = Normalised("ABC")
    assert n.text == "abc"
    assert replace(n, text="XY", size=2) == Normalised("xy", 2)
    assert replace(Box(items={"a": 1}), label="c") == Box(items={"a": 1}, label="c")
    with pytest.raises(TypeError, match="no field nope"):
        replace(n, nope=1)


def test_asdict_turns_nested_records_into_dictionaries() -> None:
    value = Nested(Point(1), (Point(2),), {"k": Point(3)})
    assert asdict(value) == {
        "point": {"x": 1, "y": 0, "tags": []},
        "points": [{"x": 2, "y": 0, "tags": []}],
        "named": {"k": {"x": 3, "y": 0, "tags": []}},
    }


def test_copies_and_pickles_keep_the_record() -> None:
    p = Point3(1, 2, ["a"], 3)
    assert copy.copy(p) == p
    assert copy.deepcopy(p) == p
    assert pickle.loads(pickle.dumps(p)) == p
    box = pickle.loads(pickle.dumps(Box(items={"a": 1})))
    box.label = "still mutable"


def test_a_class_keeps_methods_it_defines_itself() -> None:
    class Named(Record):
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert repr(Named("a")) == "<a>"


def test_class_definitions_that_attrs_refuses_are_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(Record):
            a: int = 0
            b: int

    with pytest.raises(TypeError, match="cannot change frozen"):

        class Thawed(Point, frozen=False):
            w: int = 0

    with pytest.raises(TypeError, match="default or a factory"):
        field(default=1, factory=int)
