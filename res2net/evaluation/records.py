"""Typed JSON records: frozen dataclasses whose fields are declared with a ``doc``, checked and converted on load.

``Record.from_json`` turns a JSON object into the declared types with short messages naming a missing or wrong
field; ``to_json`` writes it back value for value, so a file read and written again is byte-identical.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from typing import Any, TypeVar

__all__ = ["Record", "ResultsError", "doc", "field_docs"]

R = TypeVar("R", bound="Record")


class ResultsError(ValueError):
    """A results file that is not one, or of another schema version; the message says what is wrong."""


def doc(text: str, *, optional: bool = False) -> Any:
    """A declared field: what it holds; ``optional``: absent from some files (then None)."""
    return field(default=None if optional else MISSING, metadata={"doc": text, "optional": optional})


@dataclass(frozen=True, kw_only=True)
class Record:
    """A JSON object of the results file: ``from_json`` checks and converts it, ``to_json`` writes it back."""

    # optional fields the JSON holds as null (kept apart from absent ones so that a round trip is exact)
    _nulls: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def _json_in(cls, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """The JSON object as the declared fields read it (overridden where keys follow a pattern)."""
        return obj

    def _json_out(self, out: dict[str, Any]) -> dict[str, Any]:
        """The inverse of ``_json_in``."""
        return out

    @classmethod
    def from_json(cls: type[R], obj: object, where: str = "results") -> R:
        """The record of the JSON object ``obj``; ``ResultsError`` names the first missing or mistyped field."""
        return _record(cls, obj, where)

    def to_json(self) -> dict[str, Any]:
        """The JSON object this record was read from (keys of absent optional fields left out)."""
        out: dict[str, Any] = {}
        for f, _, optional in _plan(type(self)):
            v = getattr(self, f)
            if v is None and optional and f not in self._nulls:
                continue
            out[f] = _to_json(v)
        return self._json_out(out)


def field_docs(cls: type[Record]) -> dict[str, str]:
    """Field name -> what it means, as declared."""
    return {f.name: f.metadata["doc"] for f in fields(cls) if "doc" in f.metadata}


@cache
def _plan(cls: type[Record]) -> tuple[tuple[str, Callable[[object], Any], bool], ...]:
    """(name, its converter, optional) of each declared field of ``cls``, built once per class."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name]), f.metadata["optional"]) for f in fields(cls)
                 if "doc" in f.metadata)


def _to_json(v: object) -> object:
    if isinstance(v, Record):
        return v.to_json()
    if isinstance(v, tuple):
        return [_to_json(x) for x in v]
    if isinstance(v, dict):
        return {k: _to_json(x) for k, x in v.items()}
    return v


def _few(names: list[str]) -> str:
    """'a, b, c', 'a, b, c and 1 more field', 'a, b, c and 4 more fields': a message names what is missing without
    listing a schema."""
    more = len(names) - 3
    return ", ".join(names[:3]) + (f" and {more} more field{'s' if more > 1 else ''}" if more > 0 else "")


class _Invalid(Exception):
    """What is wrong at ``path`` (filled in on the way out, so that valid files build no paths)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what, self.path = what, []


def _record(cls: type[R], obj: object, where: str) -> R:
    """``obj`` as a ``cls``; ``ResultsError`` says where it is not one."""
    try:
        return _build(cls, obj)
    except _Invalid as e:
        at = "".join(e.path).removeprefix(".")
        raise ResultsError(f"{where}: {at} {e.what}" if at else f"{where} {e.what}") from None


def _build(cls: type[R], obj: object) -> R:
    if not isinstance(obj, Mapping):
        raise _Invalid("is not a JSON object")
    obj = cls._json_in(obj)
    plan = _plan(cls)
    missing = [f for f, _, optional in plan if not optional and f not in obj]
    if missing:
        raise _Invalid(f"lacks {_few(missing)}")
    values = {}
    for f, convert, _ in plan:
        if f in obj:
            try:
                values[f] = convert(obj[f])
            except _Invalid as e:
                e.path.insert(0, f".{f}")
                raise
    nulls = frozenset(f for f, _, optional in plan if optional and obj.get(f, 0) is None)
    return cls(**values, _nulls=nulls)


_PLAIN = {str: "text", bool: "true or false", int: "an integer", float: "a number"}


def _converter(hint: Any) -> Callable[[object], Any]:
    """A function that checks a JSON value against the declared type ``hint`` and returns the declared value:
    records built, arrays as tuples, objects as dicts, numbers and text as they are."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = (a for a in args if a is not type(None))
        convert = _converter(inner)
        return lambda v: None if v is None else convert(v)
    if isinstance(hint, type) and issubclass(hint, Record):
        return lambda v: _build(hint, v)
    if origin is tuple:
        item = _converter(args[0])

        def convert_list(v: object) -> tuple:
            if not isinstance(v, list):
                raise _Invalid("is not a list")
            out = []
            for i, x in enumerate(v):
                try:
                    out.append(item(x))
                except _Invalid as e:
                    named = isinstance(x, Mapping) and isinstance(x.get("id"), str)
                    e.path.insert(0, f"[{i}]" + (f" ({x['id']!r})" if named else ""))  # claims[3] ('top1-x')
                    raise
            return tuple(out)
        return convert_list
    if origin in (dict, Mapping):
        value = _converter(args[1])

        def convert_object(v: object) -> dict:
            if not isinstance(v, Mapping):
                raise _Invalid("is not a JSON object")
            out = {}
            for k, x in v.items():
                try:
                    out[k] = value(x)
                except _Invalid as e:
                    e.path.insert(0, f".{k}")
                    raise
            return out
        return convert_object
    accepted = (int, float) if hint is float else hint

    def convert_plain(v: object) -> object:
        if not isinstance(v, accepted) or (isinstance(v, bool) and hint is not bool):
            raise _Invalid(f"is {str(v)[:40]!r}, not {_PLAIN[hint]}")
        return v
    return convert_plain
