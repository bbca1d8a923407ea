"""Stage: qa_builder."""
