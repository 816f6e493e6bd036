"""parquet adapters."""
