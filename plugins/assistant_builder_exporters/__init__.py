"""Built-in exporter plugins: ``onnx`` (fp32, optional graph optimisation and int8) and ``torchscript``."""
