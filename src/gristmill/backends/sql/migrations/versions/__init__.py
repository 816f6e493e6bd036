"""Migration scripts, one per schema revision, oldest first (never edited once released)."""
