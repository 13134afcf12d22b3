"""Importing this module registers every data set loader."""

from pnlp_bench.data import mtop, multiatis  # noqa: F401
