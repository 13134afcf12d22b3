"""pnlp-bench: reproduce the tables of pNLP-Mixer and BiGS on real data."""

__version__ = "0.1.0"
