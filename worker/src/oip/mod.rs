//! The Open Inference Protocol v2 (REST), both sides: the wire format in one place —
//! [`protocol`] (messages and the binary tensor extension), [`tensors`] (the detection
//! outputs), [`json_data`] (JSON tensor data) — used by the server (`crate::serve`) and by
//! [`client`], the client shards use against `labeljob serve` or any OIP server. Neither
//! side imports the other.

pub mod client;
pub mod json_data;
pub mod protocol;
pub mod tensors;

pub use client::{ClientOptions, OipClient, OipError};
