"""Importing this module registers every data set loader."""

from pnlp_bench.data import hyperpartisan, imdb, mtop, multiatis  # noqa: F401
