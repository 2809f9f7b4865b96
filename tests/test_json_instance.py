"""The simulated provider's JSON-schema instances validate against their schema (checked
with the `jsonschema` library), for hand-picked schemas, pydantic's, and random schemas
of the subset structured outputs use."""

from __future__ import annotations

import enum
from typing import Any, Literal

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.simulated.json_instance import InstanceError, instance


def valid(schema: dict[str, Any]) -> Any:
    value = instance(schema)
    jsonschema.Draft202012Validator(schema).validate(value)
    assert instance(schema) == value  # the same every time
    return value


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        {"type": "string", "format": "email"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "uuid", "minLength": 36},
        {"type": "string", "minLength": 20, "maxLength": 25},
        {"type": "integer", "minimum": 18, "maximum": 99},
        {"type": "integer", "exclusiveMinimum": 5, "multipleOf": 7},
        {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 0.75},
        {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3},
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}]},
        {"type": ["null", "integer"]},
        {"enum": ["red", "green"]},
        {"const": {"kind": "fixed"}},
        {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 2}]},
        {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            ]
        },
        {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    },
                    "required": ["name", "children"],
                    "additionalProperties": False,
                }
            },
            "$ref": "#/$defs/node",
        },
        {"type": "object", "required": ["undescribed"]},
    ],
)
def test_hand_picked_schemas(schema: dict[str, Any]) -> None:
    valid(schema)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: str = pydantic.Field(min_length=3)
    zip_code: str = pydantic.Field(pattern=r"^\d{5}$")


class Person(pydantic.BaseModel):
    """What LangChain's with_structured_output sends for a pydantic model."""

    name: str
    age: int = pydantic.Field(ge=0, le=150)
    email: str | None = None
    colour: Colour
    kind: Literal["person"]
    tags: list[str] = pydantic.Field(min_length=2)
    address: Address
    scores: dict[str, float]
    friends: list[Person] = []


def test_pydantic_models_schema() -> None:
    schema = Person.model_json_schema()
    person = Person.model_validate(valid(schema))
    assert person.kind == "person"


def test_a_schema_that_accepts_nothing_is_an_error() -> None:
    with pytest.raises(InstanceError):
        instance({"type": "object", "properties": {"a": False}, "required": ["a"]})
    with pytest.raises(InstanceError):
        instance({"$ref": "https://example.com/remote.json"})


# --- random schemas of the structured-output subset --------------------------------------

_LEAVES = st.one_of(
    st.just({"type": "string"}),
    st.just({"type": "integer"}),
    st.just({"type": "number"}),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.builds(
        lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
        st.integers(-1000, 1000),
        st.integers(0, 50),
    ),
    st.builds(
        lambda lo, hi: {"type": "string", "minLength": lo, "maxLength": lo + hi},
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    st.builds(
        lambda values: {"enum": values}, st.lists(st.text(max_size=5), min_size=1, max_size=4)
    ),
    st.sampled_from([{"type": "string", "format": f} for f in ("date", "email", "uri", "uuid")]),
    st.sampled_from([{"type": "string", "pattern": p} for p in ("^[a-z]+$", "^\\d{3}-\\d{2}$")]),
)


def _compound(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
    objects = st.builds(
        lambda props, strict: {
            "type": "object",
            "properties": props,
            "required": list(props) if strict else list(props)[:1],
            "additionalProperties": False,
        },
        st.dictionaries(names, children, max_size=4),
        st.booleans(),
    )
    arrays = st.builds(
        lambda items, lo: {"type": "array", "items": items, "minItems": lo},
        children,
        st.integers(0, 3),
    )
    nullable = st.builds(lambda c: {"anyOf": [c, {"type": "null"}]}, children)
    return st.one_of(objects, arrays, nullable)


SCHEMAS = st.recursive(_LEAVES, _compound, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(SCHEMAS)
def test_random_schemas(schema: dict[str, Any]) -> None:
    valid(schema)
