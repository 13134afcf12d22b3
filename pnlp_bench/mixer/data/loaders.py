"""Importing this module registers every data set loader."""

from pnlp_bench.mixer.data import atis, hyperpartisan, imdb, mtop, mtop_aligned, multiatis  # noqa: F401
