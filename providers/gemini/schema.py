"""JSON Schema (what OpenAI clients send) → Gemini's `Schema`, a subset of OpenAPI 3.0.

Gemini refuses keywords outside its subset (`additionalProperties`, `$schema`, `$ref`…)
with a 400, so they are translated where OpenAPI has an equivalent and dropped where it
has none: a looser schema the model still follows beats a request that always fails.
"""

from __future__ import annotations

from typing import Any

import msgspec

from providers.errors import InvalidRequest

# the Schema fields https://ai.google.dev/api/caching#Schema lists, besides the
# structural ones handled below (type, properties, required, items, anyOf, enum)
_KEPT = (
    "format",
    "title",
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "example",
    "default",
    "propertyOrdering",
)
_MAX_DEPTH = 64  # deeper than any real tool schema; stops a $ref cycle cold
# far more than Gemini accepts in one schema: a few definitions that each use the next
# twice expand, inlined, to 2**depth nodes, which would hold the event loop for hours
_MAX_NODES = 10_000


class _Converter:
    def __init__(self, root: dict[str, Any], param: str) -> None:
        self._definitions: dict[str, Any] = {}
        for key in ("$defs", "definitions"):
            found = root.get(key)
            if isinstance(found, dict):
                self._definitions.update({f"#/{key}/{name}": s for name, s in found.items()})
        self._param = param
        self._nodes = 0

    def _fail(self, why: str) -> InvalidRequest:
        return InvalidRequest(f"Gemini cannot use this JSON schema: {why}.", param=self._param)

    def convert(self, schema: Any, depth: int = 0, refs: tuple[str, ...] = ()) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise self._fail("it is nested too deeply")
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise self._fail(f"it expands to more than {_MAX_NODES} subschemas")
        if not isinstance(schema, dict):
            return {}  # `true` / `{}`: anything goes, which Gemini says by leaving type out
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in refs:
                raise self._fail(f"'{ref}' refers to itself, and Gemini schemas cannot recurse")
            target = self._definitions.get(ref)
            if target is None:
                raise self._fail(f"'{ref}' is not a local definition")
            if not isinstance(target, dict):
                target = {}  # `true`: anything goes, as for a schema in place
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return self.convert({**target, **siblings}, depth + 1, (*refs, ref))
        out: dict[str, Any] = {}
        self._type(schema, out)
        self._alternatives(schema, out, depth, refs)
        for key in _KEPT:
            if key in schema:
                out[key] = schema[key]
        self._enum(schema, out)
        properties = schema.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {
                name: self.convert(sub, depth + 1, refs) for name, sub in properties.items()
            }
            required = schema.get("required")
            if isinstance(required, list):
                # Gemini refuses a required name that is not among the properties
                out["required"] = [
                    name for name in required if isinstance(name, str) and name in properties
                ]
            if "type" not in out and "anyOf" not in out:
                out["type"] = "object"
        items = schema.get("items")
        if isinstance(items, dict):
            out["items"] = self.convert(items, depth + 1, refs)
        return out

    def _type(self, schema: dict[str, Any], out: dict[str, Any]) -> None:
        kind = schema.get("type")
        if isinstance(kind, list):
            # JSON Schema's ["string", "null"] is OpenAPI's nullable string
            kinds = [k for k in kind if k != "null"]
            if len(kinds) < len(kind):
                out["nullable"] = True
            if len(kinds) == 1:
                out["type"] = kinds[0]
            elif kinds:
                out["anyOf"] = [{"type": k} for k in kinds]
        elif isinstance(kind, str) and kind != "null":
            out["type"] = kind
        elif kind == "null":
            out["nullable"] = True

    def _alternatives(
        self, schema: dict[str, Any], out: dict[str, Any], depth: int, refs: tuple[str, ...]
    ) -> None:
        # OpenAPI 3.0 as Gemini reads it has anyOf only: oneOf becomes anyOf (a value
        # matching several branches is then accepted), and allOf is merged into one
        for keyword in ("anyOf", "oneOf"):
            branches = schema.get(keyword)
            if not isinstance(branches, list):
                continue
            kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
            if len(kept) < len(branches):
                out["nullable"] = True
            alternatives = [self.convert(b, depth + 1, refs) for b in kept]
            if len(alternatives) == 1:
                out.update({k: v for k, v in alternatives[0].items() if k not in out})
            elif alternatives:
                out["anyOf"] = alternatives
        parts = schema.get("allOf")
        if isinstance(parts, list):
            for part in parts:
                converted = self.convert(part, depth + 1, refs)
                merged = {**out.get("properties", {}), **converted.get("properties", {})}
                required = [*out.get("required", []), *converted.get("required", [])]
                out.update(converted)
                if merged:
                    out["properties"] = merged
                if required:
                    out["required"] = list(dict.fromkeys(required))

    def _enum(self, schema: dict[str, Any], out: dict[str, Any]) -> None:
        values = schema.get("enum")
        if not isinstance(values, list) and "const" in schema:
            values = [schema["const"]]
        if not isinstance(values, list):
            return
        if None in values:
            out["nullable"] = True
        # Gemini's enum holds strings, also for numbers: {type: INTEGER, enum: ["101"]}
        out["enum"] = [
            v if isinstance(v, str) else msgspec.json.encode(v).decode()
            for v in values
            if v is not None
        ]
        if "type" not in out and "anyOf" not in out:
            out["type"] = "string"


def gemini_schema(schema: dict[str, Any], *, param: str) -> dict[str, Any]:
    """`schema` in the form Gemini accepts; `param` names it in a 400 if it cannot be."""
    return _Converter(schema, param).convert(schema)
