"""Feature engineering: validation, feature steps and pipelines, selection."""
