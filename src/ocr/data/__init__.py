"""Data flow: dataset -> transforms -> targets (+ cache) -> collate."""
