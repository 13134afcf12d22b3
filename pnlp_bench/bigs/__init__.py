"""The BiGS pipeline: masked-LM pretraining and GLUE / SCROLLS fine-tuning of `pnlp_bench.bigs.model`.

`bench run` hands a run over to `pipeline.run_bigs` when the composed backbone is `bigs`. Read in this order:

* `pipeline.py`: typed configs -> data -> model (and `init=`) -> pretrain or fine-tune -> the run record;
* `tokenization.py`: BERT-uncased WordPiece, pair truncation, fixed-length encoding;
* `masking.py`: BERT's 15% masking with 80/10/10 replacement;
* `pretrain.py`: the MLM loop (steps, warm-up + cosine decay, resumable checkpoints);
* `finetune.py`: the classification / regression / multiple-choice loop (epochs, final-epoch reporting,
  resumable checkpoints every epoch);
* `checkpoints.py`: loading a pretrained encoder (`run:<config hash>`, a run folder, a checkpoint file, or
  `hf:<repo>`).
"""
