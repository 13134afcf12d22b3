"""pNLP-Mixer's data sets: `base.py` (the typed config, examples, the parsed-split cache), one module per data
set, `loaders.py` (registers them all; `load_data`), `features.py` (words -> projection buckets)."""
