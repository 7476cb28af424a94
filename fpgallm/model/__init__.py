"""fpgallm.model."""
