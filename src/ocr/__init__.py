"""ocr: a DBNet receipt text detector trainer that measures where its time goes."""

__version__ = "0.1.0"
