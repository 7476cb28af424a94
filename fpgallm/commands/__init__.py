"""fpgallm.commands."""
