"""What several stages share: file hashing, text decoding and JSONL reading (:mod:`.files`), progress
bars (:mod:`.progress`), optional-dependency checks with their install hints (:mod:`.deps`) and the
wording of the questions that build-vqa writes and the model asks (:mod:`.questions`).

The lowest layer after :mod:`aigciqa.errors`: it imports no stage."""
