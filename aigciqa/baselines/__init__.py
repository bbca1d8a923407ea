"""Baseline quality methods scored on a database folder next to MINT-IQA (NIQE, BRISQUE, text-image scorers, ridge)."""
