"""nats adapters."""
