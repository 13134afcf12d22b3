"""BiGS's text tasks: GLUE, SCROLLS and MLM corpora as WordPiece-ready examples (`text_tasks.py` first)."""
