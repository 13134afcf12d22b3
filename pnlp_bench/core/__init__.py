"""What every run relies on, whichever family it belongs to: atomic files, readable checkpoints, one run per
folder at a time, and progress a log can read.

Shared code below the families: nothing here imports anything else from pnlp_bench, so every module
(families, tables, the store) can use it without an import cycle.
"""
