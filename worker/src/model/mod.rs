//! Detection models: configuration (builtin or URI), class maps, the ONNX Runtime session and
//! the engine threads that own it, and the output decoders.

pub mod classes;
pub mod config;
pub mod decode;
pub mod engine;
pub mod session;
pub mod signed_weights;
mod wire;

pub use classes::{Category, ClassMap};
pub use config::ModelConfig;
pub use decode::{Filter, RawDetection};
pub use engine::{Engine, EngineOptions, InferError};
