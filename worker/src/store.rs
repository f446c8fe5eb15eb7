//! Object storage: `file://`, `s3://`, `gs://`, `az://` locations and `https://` URL lists.
