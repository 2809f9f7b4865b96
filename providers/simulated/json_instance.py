"""A JSON value that conforms to a JSON schema, made deterministically: what the
simulated provider answers for `response_format: json_schema` and a tool's arguments.

Written here rather than taken from a library: the generators on PyPI are test-data
tools (hypothesis-jsonschema, jsf, polyfactory) that draw random values and bring heavy
dependencies into the shipped package, or cover too little of the schema language
(references, combinators, patterns) to answer structured-output requests correctly. This
covers what structured outputs and function calling use (OpenAI's strict subset, and what
pydantic emits): `$ref` with `$defs`/`definitions`, `anyOf`/`oneOf`/`allOf`, `const`,
`enum`, `default`, type lists, object properties, array bounds, number bounds and
`multipleOf`, string lengths, common `format`s, and `pattern` (a matching string from
rstr, seeded by the pattern, so the same schema always gets the same answer).
"""

from __future__ import annotations

import math
import random
import re
import zlib
from collections.abc import Mapping
from typing import Any

import rstr

Schema = Mapping[str, Any]
# nesting followed before optional parts are left out and arrays kept empty (recursive
# schemas: a tree of nodes would otherwise never end)
_DEPTH = 6
_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


class InstanceError(ValueError):
    """A schema no value can satisfy as written (or one this generator cannot follow)."""


def instance(schema: Schema, *, text: str = "example") -> Any:
    """A value valid against `schema`. `text` fills free-form strings."""
    return _Builder(schema, text).value(schema, 0)


class _Builder:
    def __init__(self, root: Schema, text: str) -> None:
        self._root = root
        self._text = text

    def value(self, schema: Schema | bool, depth: int) -> Any:
        if schema is True or schema == {}:
            return self._text
        if schema is False or not isinstance(schema, Mapping):
            raise InstanceError("a schema that accepts nothing")
        if "$ref" in schema:
            return self.value(_merge(self._resolve(schema["$ref"]), _siblings(schema)), depth + 1)
        if "allOf" in schema:
            merged = dict(schema)
            for part in merged.pop("allOf"):
                merged = _merge(merged, self._resolve(part["$ref"]) if "$ref" in part else part)
            return self.value(merged, depth)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
                return self.value(_merge(_without(schema, key), options[0]), depth)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema:
            return schema["default"]
        return self._typed(schema, _type_of(schema), depth)

    def _typed(self, schema: Schema, kind: str, depth: int) -> Any:
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return self._string(schema)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        raise InstanceError(f"unknown type {kind!r}")

    def _object(self, schema: Schema, depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        # every property while shallow (strict schemas require them all); past the depth
        # limit only the required ones, so recursive schemas end
        names = [n for n in properties if depth < _DEPTH or n in required]
        result = {name: self.value(properties[name], depth + 1) for name in names}
        for name in required - result.keys():  # required but not described
            result[name] = self._text
        return result

    def _array(self, schema: Schema, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = low if depth >= _DEPTH else max(low, 1)
        if high is not None:
            count = min(count, int(high))
        prefix = list(schema.get("prefixItems", ()))
        items = schema.get("items", {})
        values = [self.value(s, depth + 1) for s in prefix[:count]]
        values += [self.value(items, depth + 1) for _ in range(count - len(values))]
        if schema.get("uniqueItems") and len({repr(v) for v in values}) < len(values):
            values = values[:1]  # identical made-up items: one is enough (and unique)
        return values

    def _string(self, schema: Schema) -> str:
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        pattern = schema.get("pattern")
        if pattern is not None:
            text = _matching(pattern)
        else:
            text = _FORMATS.get(schema.get("format", ""), self._text)
        if len(text) < low:
            text = (text + "x" * low)[:low]
        if high is not None and len(text) > int(high):
            text = text[: int(high)]
        return text

    def _resolve(self, ref: str) -> Schema:
        if not ref.startswith("#"):
            raise InstanceError(f"only local references are followed, not {ref!r}")
        target: Any = self._root
        for part in ref.lstrip("#").split("/"):
            if part:
                target = target[part.replace("~1", "/").replace("~0", "~")]
        if not isinstance(target, Mapping):
            raise InstanceError(f"{ref!r} is not a schema")
        return target


def _siblings(schema: Schema) -> dict[str, Any]:
    """What a `$ref` schema says besides the reference (2019-09+ applies both)."""
    return {k: v for k, v in schema.items() if k != "$ref"}


def _without(schema: Schema, key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Both schemas' constraints (for `allOf`, and a combinator's siblings)."""
    merged = dict(a)
    for key, value in b.items():
        if key == "properties" and key in merged:
            merged[key] = {**merged[key], **value}
        elif key == "required" and key in merged:
            merged[key] = [*merged[key], *(v for v in value if v not in merged[key])]
        else:
            merged[key] = value
    return merged


def _type_of(schema: Schema) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        return str(kinds[0]) if kinds else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _number(schema: Schema, *, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    step = schema.get("multipleOf")
    value: float = 1
    if low is not None and value <= low:
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if high is not None and value >= high:
        value = high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
        if low is not None and value <= low:  # a narrow open interval
            value = (low + high) / 2
    if step:
        value = math.ceil(value / step) * step
    if integer:
        value = math.ceil(value) if low is not None and value < low + 1 else math.floor(value)
        return int(value)
    return value


def _matching(pattern: str) -> str:
    """A string the pattern matches, the same one every time for the same pattern."""
    generator = rstr.Rstr(random.Random(zlib.crc32(pattern.encode())))
    try:
        text = str(generator.xeger(pattern))
    except Exception as exc:  # rstr cannot follow every construct (lookarounds, …)
        raise InstanceError(f"no string found for the pattern {pattern!r}") from exc
    if re.search(pattern, text) is None:
        raise InstanceError(f"no string found for the pattern {pattern!r}")
    return text
