"""fpgallm.units."""
