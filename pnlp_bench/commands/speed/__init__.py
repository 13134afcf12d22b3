"""`bench speed` (`bench.py`: the project's paths against the dense reference) and `bench speed length`
(`length.py`: BiGS against attention over sequence length), on one timing harness (`harness.py`).

`bench speed` is in four more modules: `workload.py` (presets, data sets, models), `figures.py` (featurization,
training and latency figures), `render.py` (ratios, targets, the report); `bench speed length` measures each
length in `length_timing.py`."""
