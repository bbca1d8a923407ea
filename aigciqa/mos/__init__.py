"""Stage: mos."""
