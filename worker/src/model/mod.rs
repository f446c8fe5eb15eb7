//! Detection models: configuration, the ONNX Runtime session thread, output decoders.
