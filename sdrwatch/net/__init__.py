"""Wire schema, durable outbox and collector transport (ZeroMQ)."""
