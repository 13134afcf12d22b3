"""Exported forms of a trained pNLP-Mixer: a Hugging Face style folder (hf.py), its int8 weights (int8.py), ONNX (onnx.py)."""
