"""Declare a pass-through operation in one statement: `operation(...)`.

Most Drip operations need no code of their own: the input model's fields go to the route's path
parameters (the names in ``{...}``), then to the query string (GET, DELETE) or the camelCase JSON body
(POST, PATCH, PUT); the reply comes back with snake_case keys (less any top-level key `omit` names, with its reason: PII
stays out of the model's context), plus the idempotency key of a write. The
key type comes from the endpoint (`drip_mcp.api.endpoints`), so scope is declared once. Metadata goes
through the metadata policy like every other write. Operations that need more (money safety, retries that
find an earlier result, secrets) keep a handler of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field

from drip_mcp.api.endpoints import ENDPOINTS
from drip_mcp.api.wire import to_wire
from drip_mcp.tools.base import InT, ToolInput, ToolOutput, ToolSpec
from drip_mcp.tools.context import ToolContext

__all__ = ["WireResult", "WriteResult", "operation", "snake_keys"]

_PATH_PARAM = re.compile(r"\{(\w+)\}")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")
# Keys inside these objects are the caller's own (metadata keys, feature keys, unit types): kept as sent.
_OPAQUE_KEYS = frozenset({"metadata", "overrides", "included_units", "by_type", "by_outcome", "custom_pricing"})


def _snake(name: str) -> str:
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


def snake_keys(value: Any, *, opaque: bool = False) -> Any:
    """`value` with every camelCase object key turned snake_case, except inside caller-owned objects."""
    if isinstance(value, dict):
        if opaque:
            return value
        out = {}
        for key, item in value.items():
            name = _snake(key) if isinstance(key, str) else key
            out[name] = snake_keys(item, opaque=name in _OPAQUE_KEYS)
        return out
    if isinstance(value, list):
        return [snake_keys(item) for item in value]
    return value


class WireResult(ToolOutput):
    """Drip's reply, passed through whole with snake_case keys (nothing is dropped)."""

    model_config = ConfigDict(extra="allow", defer_build=True)


class WriteResult(WireResult):
    """A write's reply, with the idempotency key it was sent with."""

    idempotency_key: str | None = Field(
        default=None, description="The key this write was sent with; pass it to retry the same write."
    )


def operation(
    name: str,
    title: str,
    description: str,
    *,
    toolset: str,
    endpoint: str,
    input_model: type[InT],
    read_only: bool | None = None,
    destructive: bool = False,
    idempotent: bool | None = None,
    core: bool = False,
    moves_money: bool = False,
    omit: Mapping[str, str] | None = None,
) -> ToolSpec[InT, WireResult]:
    """A pass-through operation on `endpoint` (a name in `ENDPOINTS`); annotations default from its method."""
    ep = ENDPOINTS[endpoint]
    path_params = tuple(_PATH_PARAM.findall(ep.path))
    unknown = [p for p in path_params if p not in input_model.model_fields]
    if unknown:  # pragma: no cover - a declaration bug, caught at import
        raise TypeError(f"{name}: {input_model.__name__} lacks path parameter(s) {unknown}")
    reads = ep.method == "GET"

    async def handler(ctx: ToolContext, inp: ToolInput) -> WireResult:
        fields = inp.model_dump(exclude_none=True)
        key = fields.pop("idempotency_key", None)
        path = {p: str(fields.pop(p)) for p in path_params}
        if "metadata" in fields:
            fields["metadata"] = ctx.clean_metadata(fields["metadata"])
        if ep.mutating:
            data, used = await ctx.client.request(ep, path_params=path, body=to_wire(fields), idempotency_key=key)
        else:
            data, used = await ctx.client.request(ep, path_params=path, params=fields)
        result = snake_keys(data) if isinstance(data, dict) else {"result": data if data is not None else "ok"}
        for dropped in omit or {}:
            result.pop(dropped, None)
        if ep.mutating:
            return WriteResult(**result, idempotency_key=used)
        return WireResult(**result)

    return ToolSpec(
        name=name,
        title=title,
        description=description,
        toolset=toolset,
        scope=ep.scope,
        input_model=input_model,
        output_model=WriteResult if ep.mutating else WireResult,
        handler=handler,
        read_only=reads if read_only is None else read_only,
        destructive=destructive,
        idempotent=(reads or ep.method in ("PUT", "DELETE")) if idempotent is None else idempotent,
        core=core,
        moves_money=moves_money,
    )
