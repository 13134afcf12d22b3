"""Code below the model families (pNLP-Mixer, BiGS) that any of them may use; it imports nothing of pnlp_bench."""
