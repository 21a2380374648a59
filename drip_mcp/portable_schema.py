"""Turn a pydantic ``model_json_schema()`` into an input schema every common LLM client accepts.

Pure (no drip_mcp imports): a dict in, a new dict out; the input is never mutated.

Targets, each checked by ``tests/compat/test_portable_schema.py`` with the real library:

* OpenAI strict mode, as openai-agents converts an MCP tool (``MCPUtil.to_function_tool`` with
  ``convert_schemas_to_strict=True``, which calls ``agents.strict_schema.ensure_strict_json_schema`` with
  ``_reject_open_objects=True`` and silently falls back to non-strict when it raises);
* google-genai ``mcp_to_gemini_tool``, ``types.FunctionDeclaration(parameters=...)`` and
  ``types.Schema.from_json_schema(...)``.

What the transform does:

* inlines every ``$ref`` and drops ``$defs``/``definitions`` (Gemini's ``Schema`` has no ``$ref``);
* drops ``title`` (noise for a model, and bytes on every tools/list);
* rewrites ``exclusiveMinimum``/``exclusiveMaximum`` (Gemini rejects them): an integer bound becomes the
  next integer (exact); a number bound becomes ``minimum``/``maximum`` plus a sentence in ``description``,
  so the boundary value itself is admitted by the schema and refused by the server (the one known gap);
* keeps ``required`` honest: only what the model requires. OpenAI strict conversion lists every property as
  required by itself, and clients that check arguments before calling (openai-agents does) would otherwise
  refuse a call that leaves an optional argument out. An optional property that accepts ``null`` stays
  nullable (``null`` means "not given"); one with a non-null default keeps it, in the description;
* folds ``allOf: [one schema]`` into its parent; keeps ``anyOf`` (every target accepts ``anyOf`` with null);
* replaces a free-form object (``dict[str, Any]``: ``additionalProperties: true`` or no declared properties)
  with a closed object of typed, nullable, operational keys (``open_object_properties``), or drops the
  property when that is ``None``. Every instance of the typed shape is still a ``dict[str, Any]``;
* removes boolean ``additionalProperties`` everywhere: ``mcp_to_gemini_tool`` crashes on it
  (``'bool' object has no attribute 'items'``), and openai-agents closes every object itself. A JSON Schema
  validator would therefore admit undeclared keys that the server refuses: strict OpenAI and Gemini function
  calling never produce them. ``close_objects=True`` keeps objects closed for OpenAI-only consumers;
* keeps an object marked ``"x-free-form": true`` (`FREE_FORM`) open, as a bare ``{"type": "object"}``: for
  arguments that are free-form by nature (a catalogue call's ``arguments``), which the server validates
  against another schema. Gemini accepts it; OpenAI strict cannot, so such a tool is not strict there;
* gives an object with no properties (a tool without arguments) one optional, nullable placeholder property,
  `PLACEHOLDER_PROPERTY`: the only shape both OpenAI strict (an open object is refused, and a closed one
  crashes Gemini) and ``mcp_to_gemini_tool`` accept. The server must drop it before validating
  (`strip_placeholders`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_OPEN_OBJECT_PROPERTIES",
    "FREE_FORM",
    "PLACEHOLDER_PROPERTY",
    "portable_input_schema",
    "strip_placeholders",
]

PLACEHOLDER_PROPERTY = "_unused"
"""The property given to an argument-less object. Always ``null``; the server drops it (`strip_placeholders`)."""

_PLACEHOLDER_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "null"}],
    "description": "Not used: this tool takes no arguments. Pass null.",
}

DEFAULT_OPEN_OBJECT_PROPERTIES: Mapping[str, dict[str, Any]] = {
    "model": {"type": "string", "maxLength": 200},
    "tool": {"type": "string", "maxLength": 200},
    "status": {"type": "string", "maxLength": 100},
    "latency_ms": {"type": "number", "minimum": 0},
    "count": {"type": "integer", "minimum": 0},
}
"""The typed allowlist that replaces a free-form metadata object: operational context only, all nullable."""

FREE_FORM = "x-free-form"
"""Schema marker (`WithJsonSchema`/`json_schema_extra`): keep this object open, as ``{"type": "object"}``."""

_DROP_KEYS = frozenset({"title", "$defs", "definitions", "$schema", "$id", "examples"})


def portable_input_schema(
    schema: Mapping[str, Any],
    *,
    open_object_properties: Mapping[str, Mapping[str, Any]] | None = DEFAULT_OPEN_OBJECT_PROPERTIES,
    close_objects: bool = False,
) -> dict[str, Any]:
    """A portable copy of `schema` (a pydantic ``model_json_schema()`` of an object model)."""
    root = copy.deepcopy(dict(schema))
    converter = _Converter(root, open_object_properties, close_objects)
    result = converter.convert(root, depth=0)
    if result.get("type") != "object":
        raise ValueError("an input schema must be an object schema")
    return result


def strip_placeholders(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """`arguments` without `PLACEHOLDER_PROPERTY` (a tool with no arguments receives it as ``null``)."""
    return {key: value for key, value in arguments.items() if key != PLACEHOLDER_PROPERTY}


class _Converter:
    def __init__(
        self,
        root: dict[str, Any],
        open_object_properties: Mapping[str, Mapping[str, Any]] | None,
        close_objects: bool,
    ) -> None:
        self.root = root
        self.open_object_properties = open_object_properties
        self.close_objects = close_objects

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r}: only local references can be inlined")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        if not isinstance(node, dict):
            raise ValueError(f"$ref {ref!r} does not point at a schema")
        return copy.deepcopy(node)

    def convert(self, node: Mapping[str, Any], *, depth: int) -> dict[str, Any]:
        if depth > 64:
            raise ValueError("schema too deep (a recursive $ref cannot be inlined)")
        schema = dict(node)
        if schema.pop(FREE_FORM, False):
            open_object: dict[str, Any] = {"type": "object"}
            if isinstance(schema.get("description"), str):
                open_object["description"] = schema["description"]
            return open_object
        ref = schema.pop("$ref", None)
        if isinstance(ref, str):
            # Siblings of the $ref (a description, say) win over the target's own keywords.
            schema = {**self.resolve(ref), **schema}
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            del schema["allOf"]
            inner = self.convert(all_of[0], depth=depth + 1)
            schema = {**inner, **{k: v for k, v in schema.items() if k not in _DROP_KEYS}}
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in _DROP_KEYS:
                continue
            if (key == "anyOf" and isinstance(value, list)) or (key == "allOf" and isinstance(value, list)):
                out[key] = [self.convert(v, depth=depth + 1) for v in value]
            elif key == "oneOf" and isinstance(value, list):
                # Gemini's Schema has no oneOf; anyOf admits a superset and pydantic still decides.
                out.setdefault("anyOf", []).extend(self.convert(v, depth=depth + 1) for v in value)
            elif key == "items" and isinstance(value, dict):
                out[key] = self.convert(value, depth=depth + 1)
            else:
                out[key] = value
        _rewrite_exclusive_bounds(out)
        if _is_object(out):
            self._object(out, depth=depth)
        return out

    def _object(self, out: dict[str, Any], *, depth: int) -> None:
        properties = out.get("properties")
        declared: dict[str, Any] = dict(properties) if isinstance(properties, dict) else {}
        required_before: set[str] = set()
        if depth > 0 and _is_free_form(out) and self.open_object_properties is not None:
            declared = {name: _nullable(dict(prop)) for name, prop in self.open_object_properties.items()}
        else:
            old_required = out.get("required")
            required_before = set(old_required) if isinstance(old_required, list) else set()
            converted: dict[str, Any] = {}
            for name, prop in declared.items():
                if not isinstance(prop, dict):
                    continue
                if self.open_object_properties is None and _is_free_form_or_null(prop):
                    continue  # a free-form object cannot be strict: not offered to the model
                new = self.convert(prop, depth=depth + 1)
                converted[name] = new if name in required_before else _optional(new)
            declared = converted or {PLACEHOLDER_PROPERTY: copy.deepcopy(_PLACEHOLDER_SCHEMA)}
        out["properties"] = declared
        out["required"] = [name for name in declared if name in required_before]
        out.pop("additionalProperties", None)
        out.pop("patternProperties", None)
        if self.close_objects:
            out["additionalProperties"] = False


def _is_object(schema: Mapping[str, Any]) -> bool:
    typ = schema.get("type")
    return typ == "object" or (isinstance(typ, list) and "object" in typ)


def _is_free_form(schema: Mapping[str, Any]) -> bool:
    """An object that declares no properties and does not forbid others: ``dict[str, Any]``."""
    properties = schema.get("properties")
    return _is_object(schema) and not properties and schema.get("additionalProperties") is not False


def _is_free_form_or_null(schema: Mapping[str, Any]) -> bool:
    any_of = schema.get("anyOf")
    variants = any_of if isinstance(any_of, list) else [schema]
    objects = [v for v in variants if isinstance(v, dict) and _is_object(v)]
    return bool(objects) and all(_is_free_form(o) for o in objects)


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    typ = schema.get("type")
    if typ == "null" or (isinstance(typ, list) and "null" in typ):
        return True
    any_of = schema.get("anyOf")
    return isinstance(any_of, list) and any(isinstance(v, dict) and _accepts_null(v) for v in any_of)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if _accepts_null(schema):
        return schema
    description = schema.pop("description", None)
    out: dict[str, Any] = {"anyOf": [schema, {"type": "null"}]}
    if description is not None:
        out["description"] = description
    return out


def _optional(schema: dict[str, Any]) -> dict[str, Any]:
    """A property that was optional, now required (OpenAI strict): null keeps meaning "not given" where the
    server accepts null; otherwise the default is stated and the model must choose a value."""
    default = schema.pop("default", None)
    if _accepts_null(schema):
        return schema
    if default is not None and not isinstance(default, (dict, list)):
        schema["description"] = _append(schema.get("description"), f"Use {_literal(default)} unless told otherwise.")
    return schema


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _rewrite_exclusive_bounds(schema: dict[str, Any]) -> None:
    integer = schema.get("type") == "integer"
    for exclusive, inclusive, word in (
        ("exclusiveMinimum", "minimum", "greater"),
        ("exclusiveMaximum", "maximum", "less"),
    ):
        bound = schema.pop(exclusive, None)
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            continue
        if integer and float(bound).is_integer():
            step = 1 if inclusive == "minimum" else -1
            candidate = int(bound) + step
            current = schema.get(inclusive)
            if current is None or (candidate > current if step == 1 else candidate < current):
                schema[inclusive] = candidate
            continue
        current = schema.get(inclusive)
        if current is None or (bound >= current if inclusive == "minimum" else bound <= current):
            schema[inclusive] = bound
        schema["description"] = _append(schema.get("description"), f"Must be {word} than {_literal(bound)}.")


def _append(description: Any, sentence: str) -> str:
    if isinstance(description, str) and description.strip():
        text = description.rstrip()
        return f"{text} {sentence}" if text.endswith((".", "!", "?", ":")) else f"{text}. {sentence}"
    return sentence
