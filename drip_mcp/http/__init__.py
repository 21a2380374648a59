"""MCP over HTTP: options, authentication, tenants, the ASGI app and serving under uvicorn.

`build_http_app` (the app) and `serve_http` (uvicorn) are the entry points; `HttpOptions` the flags.
"""

from drip_mcp.http.app import build_http_app
from drip_mcp.http.options import HttpOptions
from drip_mcp.http.serve import app_factory, serve_http

__all__ = ["HttpOptions", "app_factory", "build_http_app", "serve_http"]
