//! Buffers for image bodies, reused: [`crate::location::Location`] reads an object into
//! [`take`]'s buffer, and whoever is done with the bytes (the worker, once it has decoded an
//! image) hands them back with [`recycle`].
//!
//! Why: a fresh buffer of a few MB is new memory that the kernel must fault in and zero page
//! by page while the body is copied into it. On 12 MP JPEGs, read one after another, that was
//! most of the process's page faults; a buffer that was used before has its pages already.
//!
//! Memory: at most [`MAX_POOLED_BYTES`] of idle capacity, in buffers of at most
//! [`MAX_BUFFER_BYTES`] each (larger ones are freed as before). A recycled buffer is cleared:
//! its length is what the next read put in it, so no byte of an earlier image is ever read.

use std::sync::Mutex;

use bytes::Bytes;

/// The most idle capacity kept, in all buffers together. A shard keeps `workers.concurrency`
/// bodies in flight (`labeljob run`: that many per running shard), and after a burst of
/// decodes as many come back at once; 128 MiB holds them for 12 MP photos at concurrency 16
/// with shards in parallel. What the pool holds was in flight before, so the peak stays about
/// what the in-flight bodies alone reached.
pub const MAX_POOLED_BYTES: usize = 128 << 20;
/// The largest buffer kept.
pub const MAX_BUFFER_BYTES: usize = 16 << 20;

struct Pool {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { buffers: Vec::new(), bytes: 0 });

/// New buffers are a whole number of these (or of [`SMALL_STEP`] below it), so that one
/// made for an image also fits the next, slightly larger one.
const STEP: usize = 1 << 20;
/// The rounding step of buffers under [`STEP`].
const SMALL_STEP: usize = 64 << 10;

/// An empty buffer with room for at least `size` bytes: the smallest recycled one that is
/// large enough, else a new one, rounded up to the next [`STEP`] (or [`SMALL_STEP`]). `size`
/// is a body's declared size: the caller has already refused one over its read limit.
pub fn take(size: usize) -> Vec<u8> {
    if size > MAX_BUFFER_BYTES {
        return Vec::with_capacity(size);
    }
    if let Ok(mut pool) = POOL.lock() {
        let fits = pool.buffers.iter().enumerate().filter(|(_, b)| b.capacity() >= size);
        if let Some((i, _)) = fits.min_by_key(|(_, b)| b.capacity()) {
            let buf = pool.buffers.swap_remove(i);
            pool.bytes -= buf.capacity();
            return buf;
        }
    }
    let step = if size >= STEP { STEP } else { SMALL_STEP };
    Vec::with_capacity(size.div_ceil(step).saturating_mul(step).min(MAX_BUFFER_BYTES).max(size))
}

/// Give back the bytes of an image that nothing else holds any more. Shared bytes, bytes not
/// backed by a whole buffer, and buffers past the limits are simply dropped.
pub fn recycle(bytes: Bytes) {
    let Ok(unique) = bytes.try_into_mut() else { return };
    let mut buf: Vec<u8> = unique.into();
    if buf.capacity() == 0 || buf.capacity() > MAX_BUFFER_BYTES {
        return;
    }
    buf.clear();
    let Ok(mut pool) = POOL.lock() else { return };
    if pool.bytes.saturating_add(buf.capacity()) > MAX_POOLED_BYTES {
        return;
    }
    pool.bytes += buf.capacity();
    pool.buffers.push(buf);
}

/// The pool is one per process: the tests that look into it take turns, and start from an
/// empty pool.
#[cfg(test)]
pub(crate) fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut pool) = POOL.lock() {
        pool.buffers.clear();
        pool.bytes = 0;
    }
    turn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique_size(base: usize) -> usize {
        base + 4093
    }

    #[test]
    fn a_recycled_buffer_comes_back_empty_with_its_memory() {
        let _turn = exclusive();
        let size = unique_size(3 << 20);
        let mut buf = take(size);
        assert!(buf.capacity() >= size && buf.is_empty());
        buf.resize(size, 0xAB);
        let ptr = buf.as_ptr();
        recycle(Bytes::from(buf));
        {
            let pool = POOL.lock().expect("pool");
            assert!(pool.buffers.iter().any(|b| b.as_ptr() == ptr), "the buffer was not kept");
            assert!(pool.buffers.iter().all(Vec::is_empty), "a kept buffer holds bytes");
        }
        let again = take(size);
        assert!(again.is_empty(), "a recycled buffer keeps no bytes");
        assert!(again.capacity() >= size);
    }

    #[test]
    fn new_buffers_are_rounded_up_to_fit_the_next_image() {
        let _turn = exclusive();
        let size = unique_size(2 << 20);
        assert!(take(size).capacity() >= 3 << 20);
        assert!(take(100_000).capacity() >= 128 << 10);
        assert!(take(MAX_BUFFER_BYTES + 1).capacity() > MAX_BUFFER_BYTES);
    }

    #[test]
    fn bytes_still_shared_are_not_recycled() {
        let _turn = exclusive();
        let size = unique_size(5 << 20);
        let mut buf = Vec::with_capacity(size);
        buf.resize(size, 1);
        let ptr = buf.as_ptr();
        let bytes = Bytes::from(buf);
        let other = bytes.clone();
        recycle(bytes);
        assert_eq!(other.len(), size);
        assert!(other.iter().all(|&b| b == 1), "the other holder's bytes are untouched");
        let fresh = take(size);
        assert_ne!(fresh.as_ptr(), ptr, "a buffer still in use was handed out again");
    }

    #[test]
    fn buffers_past_the_limit_are_dropped() {
        let _turn = exclusive();
        let big = MAX_BUFFER_BYTES + 1;
        let mut buf = Vec::with_capacity(big);
        buf.push(1);
        recycle(Bytes::from(buf));
        let pool = POOL.lock().expect("pool");
        assert!(pool.buffers.iter().all(|b| b.capacity() <= MAX_BUFFER_BYTES));
        assert!(pool.bytes <= MAX_POOLED_BYTES);
        assert_eq!(pool.bytes, pool.buffers.iter().map(Vec::capacity).sum::<usize>());
    }

    #[test]
    fn idle_capacity_stays_under_the_bound() {
        let _turn = exclusive();
        let size = unique_size(MAX_BUFFER_BYTES - (1 << 20));
        for _ in 0..MAX_POOLED_BYTES / size + 2 {
            let mut buf = Vec::with_capacity(size);
            buf.push(0);
            recycle(Bytes::from(buf));
        }
        let pool = POOL.lock().expect("pool");
        assert!(pool.bytes <= MAX_POOLED_BYTES, "{} idle bytes", pool.bytes);
        assert!(pool.buffers.iter().filter(|b| b.capacity() >= size).count() <= MAX_POOLED_BYTES / size);
    }
}
