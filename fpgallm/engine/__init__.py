"""fpgallm.engine."""
