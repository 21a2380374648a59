"""MCP features beyond tools: resources, completions, prompts, URL elicitation, identity and cache hints.

Each module registers itself on the server (``register(server, ...)``) or offers a small API the server
wires in; nothing here lists or calls tools. The layer sits between `drip_mcp.server` and
`drip_mcp.tools`: it may read the tool registry, the tools never import it (the tool handlers reach
`elicitation` through the `PaymentPages` hook on their `ToolContext`).

==================  ==========================================================================
module              what it serves
==================  ==========================================================================
``identity``        the server icon, the list cache hints, and whether change streams are served
``resources``       ``drip://customers/{id}``, ``drip://runs/{id}/timeline``, ``drip://charges/{id}``,
                    ``drip://webhooks/{id}`` (sk_ only), ``drip://meters``; lists filtered by key scope
``prompts``         three workflow prompts, listed only when the tools they name are callable
``completions``     ``meter``, ``customer_id`` and ``workflow`` values, cached per key for 30 s
``elicitation``     URL-mode elicitation for checkout pages and PAYMENT_REQUIRED top-ups, both eras
==================  ==========================================================================
"""

from __future__ import annotations
