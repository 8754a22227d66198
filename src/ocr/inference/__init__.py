"""Inference: shipped weights, torch and onnxruntime backends, ONNX export, streaming CSV output."""
