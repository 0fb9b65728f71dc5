"""Content-addressed Zarr trace store and the trace conventions every package shares."""
