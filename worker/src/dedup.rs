//! Duplicate images. `exact`: the sha256 of the downloaded bytes (hashed from the buffer the
//! download filled, no second read). `perceptual`: a 64-bit difference hash (dHash) of the
//! upright decoded pixels — grey levels averaged into 9×8 cells, one bit per horizontal
//! neighbour pair — compared by Hamming distance; re-encoding and resizing move it by a few bits,
//! other photos by ~20 or more.
//!
//! [`HashIndex`] answers "is this a copy of an image seen before?" for either mode. Perceptual
//! look-ups use multi-index hashing: with `d` allowed bits the 64 bits are cut into `d + 1`
//! chunks, and by the pigeonhole principle two hashes within `d` bits agree on a whole chunk,
//! so only images sharing a chunk are compared. Memory: one entry per unique image (≈ 100 bytes).

use std::collections::HashMap;

use image::RgbImage;
use labeljob_api::v1alpha1::DedupMode;
use sha2::{Digest, Sha256};

/// What identifies an image for duplicate detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageHash {
    /// sha256 of the bytes, hex.
    Exact(String),
    /// 64-bit difference hash.
    Perceptual(u64),
}

/// The sha256 of `bytes`, lowercase hex.
pub fn content_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// 64-bit difference hash of upright RGB pixels: luma (ITU-R 601, as Pillow's `L`) averaged
/// over a grid of 9×8 cells; bit `8·row + col` (most significant first) is set when cell
/// `col + 1` is brighter than cell `col` — imagehash's `dhash` convention.
pub fn dhash(rgb: &RgbImage) -> u64 {
    let (w, h) = (rgb.width().max(1) as usize, rgb.height().max(1) as usize);
    let mut cells = [[0f64; 9]; 8];
    let mut counts = [[0u32; 9]; 8];
    let raw = rgb.as_raw();
    for y in 0..rgb.height() as usize {
        let cy = (y * 8 / h).min(7);
        let row = &raw[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let cx = (x * 9 / w).min(8);
            let p = &row[x * 3..x * 3 + 3];
            let luma = f64::from(p[0]) * 0.299 + f64::from(p[1]) * 0.587 + f64::from(p[2]) * 0.114;
            cells[cy][cx] += luma;
            counts[cy][cx] += 1;
        }
    }
    let mut hash = 0u64;
    for (r, row) in cells.iter().enumerate() {
        let mean = |c: usize| row[c] / f64::from(counts[r][c].max(1));
        for c in 0..8 {
            hash = (hash << 1) | u64::from(mean(c + 1) > mean(c));
        }
    }
    hash
}

/// Hex spelling of a perceptual hash (16 digits).
pub fn hash_hex(h: u64) -> String {
    format!("{h:016x}")
}

/// Parse [`hash_hex`].
pub fn parse_hash_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

/// A match: the earlier image and the Hamming distance (0 for exact copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Manifest id of the first copy.
    pub id: u64,
    /// Bits that differ.
    pub distance: u32,
}

/// Unique images seen so far, by hash.
#[derive(Debug)]
pub struct HashIndex {
    mode: DedupMode,
    max_distance: u32,
    exact: HashMap<String, u64>,
    hashes: Vec<(u64, u64)>,
    chunks: Vec<HashMap<u64, Vec<u32>>>,
}

impl HashIndex {
    /// An empty index for `mode`; `max_distance` applies to perceptual hashes.
    pub fn new(mode: DedupMode, max_distance: u32) -> Self {
        let parts = (max_distance.min(63) + 1) as usize;
        Self {
            mode,
            max_distance,
            exact: HashMap::new(),
            hashes: Vec::new(),
            chunks: vec![HashMap::new(); parts],
        }
    }

    /// The dedup mode.
    pub fn mode(&self) -> DedupMode {
        self.mode
    }

    fn chunk(&self, h: u64, part: usize) -> u64 {
        let parts = self.chunks.len() as u32;
        let (lo, hi) = (part as u32 * 64 / parts, (part as u32 + 1) * 64 / parts);
        let width = hi - lo;
        let mask = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
        (h >> lo) & mask
    }

    /// The first image `hash` copies, if any; otherwise record it as unique under `id`.
    pub fn check_or_insert(&mut self, hash: &ImageHash, id: u64) -> Option<Match> {
        match (self.mode, hash) {
            (DedupMode::None, _) => None,
            (_, ImageHash::Exact(h)) => match self.exact.get(h) {
                Some(first) => Some(Match { id: *first, distance: 0 }),
                None => {
                    self.exact.insert(h.clone(), id);
                    None
                }
            },
            (_, ImageHash::Perceptual(h)) => {
                let best = (0..self.chunks.len())
                    .filter_map(|p| self.chunks[p].get(&self.chunk(*h, p)))
                    .flatten()
                    .map(|i| self.hashes[*i as usize])
                    .map(|(other, first)| Match { id: first, distance: (other ^ h).count_ones() })
                    .filter(|m| m.distance <= self.max_distance)
                    .min_by_key(|m| (m.distance, m.id));
                if best.is_none() {
                    let pos = self.hashes.len() as u32;
                    self.hashes.push((*h, id));
                    for p in 0..self.chunks.len() {
                        let c = self.chunk(*h, p);
                        self.chunks[p].entry(c).or_default().push(pos);
                    }
                }
                best
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32, flip: bool) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 255 / w.max(1)) as u8).wrapping_add((y * 40 / h.max(1)) as u8);
            let v = if flip { 255 - v } else { v };
            image::Rgb([v, v / 2, 255 - v])
        })
    }

    #[test]
    fn dhash_survives_resizing_not_a_different_picture() {
        let a = dhash(&gradient(640, 480, false));
        let b = dhash(&gradient(320, 240, false));
        let c = dhash(&gradient(640, 480, true));
        assert!((a ^ b).count_ones() <= 2, "resized copy: {:064b} vs {:064b}", a, b);
        assert!((a ^ c).count_ones() >= 32, "inverted picture differs");
        assert_eq!(parse_hash_hex(&hash_hex(a)), Some(a));
    }

    #[test]
    fn exact_index_names_the_first_copy() {
        let mut ix = HashIndex::new(DedupMode::Exact, 4);
        let h = ImageHash::Exact(content_sha256(b"abc"));
        assert_eq!(ix.check_or_insert(&h, 3), None);
        assert_eq!(ix.check_or_insert(&h, 7), Some(Match { id: 3, distance: 0 }));
        assert_eq!(ix.check_or_insert(&ImageHash::Exact(content_sha256(b"abd")), 8), None);
    }

    #[test]
    fn perceptual_index_finds_hashes_within_the_distance_only() {
        let mut ix = HashIndex::new(DedupMode::Perceptual, 4);
        let base = 0xF0F0_1234_5678_9ABCu64;
        assert_eq!(ix.check_or_insert(&ImageHash::Perceptual(base), 1), None);
        // 4 bits flipped in different chunks: still found.
        let near = base ^ (1 | 1 << 20 | 1 << 40 | 1 << 63);
        assert_eq!(ix.check_or_insert(&ImageHash::Perceptual(near), 2), Some(Match { id: 1, distance: 4 }));
        let far = base ^ 0b11111;
        assert_eq!(ix.check_or_insert(&ImageHash::Perceptual(far), 3), None, "5 bits is too far");
        let none = HashIndex::new(DedupMode::None, 4).check_or_insert(&ImageHash::Perceptual(base), 4);
        assert_eq!(none, None);
    }
}
