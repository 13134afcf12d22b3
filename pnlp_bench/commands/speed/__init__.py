"""`bench speed` (`bench.py`: the project's paths against the dense reference) and `bench speed length`
(`length.py`: BiGS against attention over sequence length), on one timing harness."""
