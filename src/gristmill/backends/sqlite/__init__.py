"""sqlite adapters."""
