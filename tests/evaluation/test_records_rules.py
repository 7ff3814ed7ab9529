"""Rules of typed JSON records (``res2net.evaluation.records``), written before the tests, on small records made here:

- every declared field that is not optional must be present; a message names the first three missing fields and
  counts the rest ("and N more fields"), so a wrong file does not print a schema;
- a value of the wrong type is named by its path (``a.b[2].c``; a list item with a text ``id`` adds it) and shown
  cut to 40 characters beside what was expected; true/false is not a number, while an integer is a number;
- nested records are built, JSON arrays become tuples, objects dicts, and ``to_json`` writes back exactly what was
  read: absent optional fields stay absent, optional fields given as null stay null, undeclared keys are dropped;
- the origin's name starts every message; a problem at the top level reads "<origin> <what>", elsewhere
  "<origin>: <path> <what>";
- ``field_docs`` gives each declared field's description, in declaration order; a required field has no default.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from res2net.evaluation.records import Record, ResultsError, doc, field_docs


def _declare() -> tuple[type[Record], ...]:
    """Point, Shape, Item and Items, declared afresh for each test (so that each test declares and reads them, with
    no plan left from an earlier one). Annotations are evaluated here, so local classes can refer to each other."""

    @dataclass(frozen=True, kw_only=True)
    class Point(Record):
        """A leaf record."""

        x: float = doc("a number")
        label: str | None = doc("optional text", optional=True)

    @dataclass(frozen=True, kw_only=True)
    class Shape(Record):
        """A record with every kind of field."""

        name: str = doc("its name")
        count: int = doc("an integer")
        closed: bool = doc("true or false")
        points: tuple[Point, ...] = doc("a list of records")
        tags: Mapping[str, int] = doc("an object of integers")
        centre: Point | None = doc("a record or null")
        weight: float | None = doc("optional number", optional=True)

    @dataclass(frozen=True, kw_only=True)
    class Item(Record):
        """A list item with an identifier."""

        id: str = doc("its identifier")
        n: int = doc("a count")

    @dataclass(frozen=True, kw_only=True)
    class Items(Record):
        """A list of identified items."""

        items: tuple[Item, ...] = doc("the items")
        by_name: Mapping[str, Item] | None = doc("items by name", optional=True)

    return Point, Shape, Item, Items


GOOD = {"name": "tri", "count": 3, "closed": True,
        "points": [{"x": 0.0}, {"x": 1, "label": "b"}, {"x": 2.5, "label": None}],
        "tags": {"a": 1, "b": 2}, "centre": None}


def _message(cls: type[Record], obj: object, where: str = "f.json") -> str:
    with pytest.raises(ResultsError) as e:
        cls.from_json(obj, where)
    return str(e.value)


def test_fields_are_built_into_their_declared_types() -> None:
    Point, Shape, Item, Items = _declare()
    s = Shape.from_json(GOOD)
    assert (s.name, s.count, s.closed, s.centre, s.weight) == ("tri", 3, True, None, None)
    assert isinstance(s.points, tuple) and all(isinstance(p, Point) for p in s.points)
    assert [p.x for p in s.points] == [0.0, 1, 2.5] and isinstance(s.points[1].x, int)  # kept as given
    assert s.points[1].label == "b" and s.points[2].label is None
    assert s.tags == {"a": 1, "b": 2} and isinstance(s.tags, dict)
    assert isinstance(Shape.from_json(GOOD | {"centre": {"x": 4.0}}).centre, Point)


def test_a_round_trip_keeps_absent_fields_absent_nulls_null_and_drops_undeclared_keys() -> None:
    Point, Shape, Item, Items = _declare()
    assert Shape.from_json(GOOD).to_json() == GOOD
    assert list(Shape.from_json(GOOD).to_json()["points"][0]) == ["x"]  # label absent, not null
    assert Shape.from_json(GOOD | {"weight": None}).to_json() == GOOD | {"weight": None}
    assert Shape.from_json(GOOD | {"weight": 0.5, "extra": 1}).to_json() == GOOD | {"weight": 0.5}
    centred = GOOD | {"centre": {"x": 1.5, "label": "c"}}
    assert Shape.from_json(centred).to_json() == centred


def test_missing_fields_are_named_three_at_most_and_counted() -> None:
    Point, Shape, Item, Items = _declare()
    assert _message(Point, {}) == "f.json lacks x"
    assert _message(Shape, {"name": "t", "count": 1, "closed": False}) == "f.json lacks points, tags, centre"
    assert _message(Shape, {"name": "t", "count": 1}) == "f.json lacks closed, points, tags and 1 more field"
    assert _message(Shape, {"name": "t"}) == "f.json lacks count, closed, points and 2 more fields"
    assert _message(Shape, GOOD | {"points": [{"x": 1}, {"label": "no x"}]}) == "f.json: points[1] lacks x"


def test_a_wrong_type_is_named_by_its_path_and_value() -> None:
    Point, Shape, Item, Items = _declare()
    cases = [
        (GOOD | {"count": 2.0}, "f.json: count is '2.0', not an integer"),
        (GOOD | {"count": True}, "f.json: count is 'True', not an integer"),  # a bool is not a number here
        (GOOD | {"closed": 1}, "f.json: closed is '1', not true or false"),
        (GOOD | {"name": 5}, "f.json: name is '5', not text"),
        (GOOD | {"points": [{"x": "0"}]}, "f.json: points[0].x is '0', not a number"),
        (GOOD | {"points": [{"x": False}]}, "f.json: points[0].x is 'False', not a number"),
        (GOOD | {"points": [{"x": 1}, {"x": 2, "label": 3}]}, "f.json: points[1].label is '3', not text"),
        (GOOD | {"tags": {"a": 1, "b": "2"}}, "f.json: tags.b is '2', not an integer"),
        (GOOD | {"tags": [1]}, "f.json: tags is not a JSON object"),
        (GOOD | {"points": {"x": 1}}, "f.json: points is not a list"),
        (GOOD | {"points": [1]}, "f.json: points[0] is not a JSON object"),
        (GOOD | {"centre": {"x": None}}, "f.json: centre.x is 'None', not a number"),
        (GOOD | {"name": "x" * 50 + "TAIL", "count": "y" * 60}, f"f.json: count is {'y' * 40!r}, not an integer"),
    ]
    for obj, message in cases:
        assert _message(Shape, obj) == message


def test_a_list_item_with_a_text_id_is_named_by_it() -> None:
    Point, Shape, Item, Items = _declare()
    assert _message(Items, {"items": [{"id": "a", "n": 1}, {"id": "b-2", "n": "x"}]}) == \
        "f.json: items[1] ('b-2').n is 'x', not an integer"
    assert _message(Items, {"items": [{"id": "a", "n": 1}, {"id": "b-2"}]}) == "f.json: items[1] ('b-2') lacks n"
    assert _message(Items, {"items": [{"id": 7, "n": 1}]}) == "f.json: items[0].id is '7', not text"
    assert _message(Items, {"items": [{"n": 1}]}) == "f.json: items[0] lacks id"
    assert _message(Items, {"items": [], "by_name": {"k": {"id": "a", "n": "x"}}}) == \
        "f.json: by_name.k.n is 'x', not an integer"  # outer key first


def test_the_origin_defaults_to_results_and_a_non_object_is_refused() -> None:
    Point, Shape, Item, Items = _declare()
    with pytest.raises(ResultsError) as e:
        Point.from_json([1])
    assert str(e.value) == "results is not a JSON object"
    with pytest.raises(ResultsError) as e:
        Point.from_json({"x": "a"})
    assert str(e.value) == "results: x is 'a', not a number"


def test_field_docs_in_declaration_order() -> None:
    Point, Shape, Item, Items = _declare()
    assert field_docs(Point) == {"x": "a number", "label": "optional text"}
    assert list(field_docs(Shape)) == ["name", "count", "closed", "points", "tags", "centre", "weight"]
    assert Point(x=1.0).label is None  # an optional field defaults to None
    with pytest.raises(TypeError, match="'x'"):  # a required one has no default, built in code or read
        Point(label="a")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fixed_dictionaries({"x": st.floats(allow_nan=False) | st.integers()},
                                      optional={"label": st.none() | st.text(max_size=5)}), max_size=4),
       st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
       st.sampled_from([{}, {"weight": None}, {"weight": 1.5}]))
def test_any_valid_object_reads_back_to_itself(points: list, tags: dict, weight: dict) -> None:
    Point, Shape, Item, Items = _declare()
    obj = GOOD | {"points": points, "tags": tags} | weight
    assert Shape.from_json(obj).to_json() == obj
