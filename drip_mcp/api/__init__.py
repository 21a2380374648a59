"""The Drip side: `DripClient` (the only module that does HTTP to Drip), wire models, the retry rule,
the endpoint table, and durable sends through the outbox."""
