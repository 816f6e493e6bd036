"""redis adapters."""
