"""Monitoring of served model versions: drift references, window counts and their verdicts."""
