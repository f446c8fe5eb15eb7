//! A small pool of writer threads for the per-image files (YOLO labels, VOC XML): the merge
//! loop hands over `(path, bytes)` and goes on, so creating ~2 files per image (kernel time)
//! overlaps the JSON work instead of adding to it. The queue is bounded (memory: at most
//! `QUEUE` small files in flight); the first error is reported when the pool is finished.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const QUEUE: usize = 4096;

type Job = (PathBuf, Vec<u8>);

/// Writes files on background threads.
pub(super) struct FilePool {
    tx: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl FilePool {
    /// A pool of `threads` writers.
    pub(super) fn new(threads: usize) -> Self {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(rx));
        let threads = (0..threads.max(1))
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || -> std::io::Result<()> {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return Ok(()),
                        };
                        let Ok((path, bytes)) = job else { return Ok(()) };
                        std::fs::write(&path, &bytes)
                            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                    }
                })
            })
            .collect();
        Self { tx: Some(tx), threads }
    }

    /// Queue a file (blocks while the queue is full).
    pub(super) fn write(&self, path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(|| std::io::Error::other("file pool finished"))?;
        tx.send((path, bytes)).map_err(|_| std::io::Error::other("a file writer stopped"))
    }

    /// Wait for every queued file; the first error if any write failed.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        drop(self.tx.take());
        let mut first = Ok(());
        for t in self.threads.drain(..) {
            let r = t.join().unwrap_or_else(|_| Err(std::io::Error::other("a file writer panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}
