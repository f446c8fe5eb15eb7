//! LabelJob data plane: the stages `labeljob run` chains in one process and the operator runs
//! as pods — plan (freeze the input listing), shard (download, decode, resize, detect, write a
//! shard file), merge (stream shards into one COCO dataset) — plus preview, the inference
//! engine, the OIP v2 inference server (`serve`) and its client (`oip::client`).

pub mod checkpoint;
pub mod dedup;
pub mod detector;
pub mod export;
pub mod imaging;
pub mod job;
pub mod lock;
pub mod merge;
pub mod model;
pub mod oip;
pub mod preview;
pub mod run;
pub mod serve;
pub mod shard;
pub mod shardfile;
pub mod stages;
