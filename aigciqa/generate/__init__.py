"""Stage: generate."""
