//! LabelJob data plane: the stages `labeljob run` chains in one process and the operator runs
//! as pods — plan (freeze the input listing), shard (download, decode, resize, detect, write a
//! COCO shard), merge (stream shards into one COCO dataset) — plus preview and the inference
//! server.

pub mod imaging;
pub mod model;
pub mod plan;
pub mod store;
