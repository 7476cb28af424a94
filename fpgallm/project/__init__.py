"""fpgallm.project."""
