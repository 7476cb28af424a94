"""fpgallm.estimate."""
