"""Published databases imported into a database folder, splits, and the embedded prompt sets."""
