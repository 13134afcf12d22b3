"""pNLP-Mixer (Fusco et al. 2022) and the baselines of its tables: projection -> bottleneck -> backbone -> head.

Read in this order: `pipeline.py` (a run: typed configs -> data -> features -> model -> train -> record),
`projection/` (MinHash and the other projections of Table 1), `data/` (MTOP, multiATIS, ATIS, IMDB,
Hyperpartisan and their featurization), `models/` (bottleneck, MLP-Mixer, the other backbones, heads),
`trainer.py` (the training loop), `metrics.py`, `quantize.py`, `inference.py` (one utterance at a time)."""
