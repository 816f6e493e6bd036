"""dask adapters."""
