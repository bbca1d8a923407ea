"""The database folder that every stage reads and writes (see README.md, "The database folder")."""

from aigciqa.database.card import (DEFAULT_PERSPECTIVES, DEFAULT_QUESTIONS, default_card,
                                   explanation_columns, question_levels, validate_card)
from aigciqa.database.folder import DatabaseFolder, FolderTransaction, dumps_jsonl
from aigciqa.database.tables import SPLIT_VALUES, TABLES

__all__ = ["DatabaseFolder", "FolderTransaction", "default_card", "validate_card", "question_levels", "explanation_columns",
           "DEFAULT_PERSPECTIVES", "DEFAULT_QUESTIONS", "TABLES", "SPLIT_VALUES", "dumps_jsonl"]
