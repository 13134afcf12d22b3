"""Exports of a trained pNLP-Mixer run: Hugging Face folder, int8 and ONNX (`bench export`)."""
