//! Mutation fuzzing on stable Rust (cargo-fuzz needs nightly): for each parser that takes input
//! from outside — image decode + resize, the shard-file reader, the job-file parser and the OIP
//! infer-request parser — real seed inputs (the fixture photos, the sample jobs, real requests)
//! are mutated (bit flips, byte and block overwrites, insertions, deletions, truncation,
//! splices, "interesting" integers) by a seeded xorshift generator, and each mutant must return
//! `Ok` or `Err`: a panic fails the target and the input is saved under
//! `target/fuzz-crashes/`; an abort (e.g. a huge allocation) kills the test process, which fails
//! too. Files in `tests/fuzz-regressions/<target>/` (crashes once found) are replayed first.
//!
//! Time per target: `LABELJOB_FUZZ_SECONDS` (default 3: the short pass every `cargo test`
//! runs); seed: `LABELJOB_FUZZ_SEED`. `make fuzz` runs each target for 10 minutes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labeljob_api::v1alpha1::ResizeMode;
use labeljob_worker::imaging::{DecodeLimits, Resizer, decode};
use labeljob_worker::oip::protocol::{parse_images, parse_request, split_body};
use labeljob_worker::shardfile::{ShardFile, ShardFor};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const INTERESTING: [u32; 10] =
    [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

/// One to four random edits of `seed` (or a splice with `other`).
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 if len >= 4 => {
                let i = rng.below(len - 3);
                let x = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if rng.below(2) == 0 { x.to_be_bytes() } else { x.to_le_bytes() };
                v[i..i + 4].copy_from_slice(&bytes);
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(64);
                let fill = rng.next() as u8;
                v.splice(i..i, std::iter::repeat_n(fill, n));
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                v.drain(i..i + n);
            }
            5 if len > 0 => v.truncate(rng.below(len)),
            6 if !other.is_empty() && len > 0 => {
                let (i, j) = (rng.below(len), rng.below(other.len()));
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            _ if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let n = 1 + rng.below(len - a.max(b)).min(32);
                let block: Vec<u8> = v[a..a + n].to_vec();
                v[b..b + n].copy_from_slice(&block);
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

fn seconds() -> u64 {
    std::env::var("LABELJOB_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3)
}

/// Run `check` on the regression files, then on mutants of `seeds` until the time is up.
fn fuzz(target: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8])) {
    assert!(!seeds.is_empty(), "{target}: no seeds");
    let run = |input: &[u8]| catch_unwind(AssertUnwindSafe(|| check(input))).is_ok();
    let regressions = repo().join("tests/fuzz-regressions").join(target);
    let mut replayed = 0;
    if let Ok(dir) = std::fs::read_dir(&regressions) {
        for f in dir.flatten() {
            let input = std::fs::read(f.path()).expect("regression file");
            assert!(run(&input), "{target}: regression {} panics", f.path().display());
            replayed += 1;
        }
    }
    let seed = std::env::var("LABELJOB_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng(seed ^ target.len() as u64 | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut execs = 0u64;
    for s in &seeds {
        assert!(run(s), "{target}: a seed panics");
    }
    while Instant::now() < deadline {
        let (a, b) = (&seeds[rng.below(seeds.len())], &seeds[rng.below(seeds.len())]);
        let input = mutate(&mut rng, a, b);
        execs += 1;
        if !run(&input) {
            let dir = repo().join("target/fuzz-crashes");
            std::fs::create_dir_all(&dir).expect("crash dir");
            let path = dir.join(format!("{target}-{execs}.bin"));
            std::fs::write(&path, &input).expect("save crash");
            panic!("{target}: panic on mutant {execs} (seed {seed}), saved to {}", path.display());
        }
    }
    println!(
        "fuzz {target}: {execs} executions in {} s, {replayed} regressions replayed, 0 crashes",
        seconds()
    );
}

fn files(dir: &str, exts: &[&str]) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .expect("seed dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e)))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).expect("seed")).collect()
}

#[test]
fn fuzz_image_decode_and_resize() {
    let mut seeds = files("tests/fixtures/photos", &["jpg", "png"]);
    seeds.extend(files("tests/fixtures/corrupt", &["jpg", "png", "webp", "bmp"]));
    // Small seeds mutate faster and reach more of the header paths.
    seeds.retain(|s| s.len() < 400_000);
    let limits =
        DecodeLimits { max_width: 4096, max_height: 4096, max_pixels: 8_000_000, max_bytes: 4 << 20 };
    fuzz("decode", seeds, |bytes| {
        if let Ok(img) = decode(bytes, Some((300, 300)), &limits) {
            let mode = if bytes.len() % 2 == 0 { ResizeMode::Stretch } else { ResizeMode::Letterbox };
            let _ = Resizer::new().resize(&img, 300, 300, mode);
        }
    });
}

#[test]
fn fuzz_job_file_parser() {
    let seeds = files("config/samples", &["yaml"]);
    fuzz("job-file", seeds, |bytes| {
        if let Ok(text) = std::str::from_utf8(bytes)
            && let Ok(job) = labeljob_api::parse_labeljob(text)
        {
            let _ = labeljob_api::validate_spec(&job.spec);
        }
    });
}

#[test]
fn fuzz_shard_file_reader() {
    let shard = |n: u64| {
        format!(
            r#"{{"index":0,"shards":1,"manifestDigest":"m","settingsDigest":"s","range":[0,{n}],"images":[{{"id":0,"uri":"file:///a.jpg","width":640,"height":480,"detections":[{{"bbox":[1.5,2.0,30.0,40.0],"categoryId":18,"score":0.9}}]}}],"errors":[{{"id":1,"uri":"file:///b.jpg","stage":"decode","kind":"corrupt","reason":"x"}}],"timings":{{"download":0.1,"decode":0.2,"inference":0.3,"wall":0.4}}}}"#
        )
        .into_bytes()
    };
    let seed: ShardFile = serde_json::from_slice(&shard(2)).expect("the seed is a shard file");
    assert_eq!(seed.images.len() + seed.errors.len(), 2);
    fuzz("shard-file", vec![shard(2), shard(3)], |bytes| {
        if let Ok(f) = serde_json::from_slice::<ShardFile>(bytes) {
            let want = ShardFor {
                manifest_digest: "m",
                settings_digest: "s",
                index: 0,
                shards: 1,
                range: 0..f.range[1],
            };
            let _ = f.is_for(&want);
        }
    });
}

#[test]
fn fuzz_oip_infer_request() {
    let image = vec![7u8; 300 * 300 * 3];
    let binary = |n: usize| {
        let json = format!(
            r#"{{"inputs":[{{"name":"images","datatype":"UINT8","shape":[{n},300,300,3],"parameters":{{"binary_data_size":{}}}}}],"outputs":[{{"name":"boxes","parameters":{{"binary_data":true}}}}]}}"#,
            n * image.len()
        );
        let mut body = json.clone().into_bytes();
        (0..n).for_each(|_| body.extend_from_slice(&image));
        (body, json.len())
    };
    let json_small = br#"{"inputs":[{"name":"images","datatype":"UINT8","shape":[1,2,2,3],"data":[1,2,3,4,5,6,7,8,9,10,11,12]}]}"#.to_vec();
    // Each seed: 8 bytes of JSON length, then the body (so mutations also hit the length).
    let framed = |(body, n): (Vec<u8>, usize)| [(n as u64).to_le_bytes().to_vec(), body].concat();
    let (body, n) = binary(2);
    let req = parse_request(&body[..n]).expect("the seed parses");
    assert_eq!(parse_images(&req, &body[n..], 300, 300, 8).expect("the seed is valid").len(), 2);
    let seeds = vec![framed(binary(1)), framed(binary(2)), framed((json_small.clone(), json_small.len()))];
    fuzz("oip-request", seeds, |bytes| {
        if bytes.len() < 8 {
            return;
        }
        let (len, body) = bytes.split_at(8);
        let n = u64::from_le_bytes(len.try_into().unwrap_or([0; 8])).to_string();
        if let Ok((json, bin)) = split_body(body, Some(&n))
            && let Ok(req) = parse_request(json)
        {
            let _ = parse_images(&req, bin, 300, 300, 8);
            let _ = parse_images(&req, bin, 2, 2, 8);
        }
    });
}
