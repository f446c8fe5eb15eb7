//! Decode + resize throughput on one thread: `cargo bench -p labeljob-worker --bench decode`.
//!
//! (a) full decode + resize and (b) scaled (DCT-domain reduced) decode + resize, both to
//! 300×300 stretch, over the fixture photos cycled to at least 1000 decodes. The fixture JPEGs
//! are at most 773×600, too small for any reduction at 300×300 (1/2 would drop below 300), so
//! (a) ≈ (b) there; two more sets show the gain on larger photos: the fixture JPEGs upscaled
//! 3× and re-encoded (≈ 2300×1700, decoded at 1/4), and darknet's kite.jpg (1352×900, decoded
//! at 1/2) when `/usr/share/darknet/data/kite.jpg` exists.
//!
//! Line (c) decodes every JPEG at 1/2 or less even when that falls below 300 px (as OpenCV's
//! `IMREAD_REDUCED_COLOR_2` does), only to compare with such measurements.
//!
//! Besides wall-clock img/s it prints img per CPU-second of this thread (Linux
//! `/proc/thread-self/schedstat`), which stays meaningful when other processes share the
//! cores.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use labeljob_api::v1alpha1::ResizeMode;
use labeljob_worker::imaging::{DecodeLimits, Resizer, decode};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SIZE: u32 = 300;
const MIN_DECODES: usize = 1000;

/// Nanoseconds this thread has run on a CPU, when the kernel reports it.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Images per wall-clock second and per CPU-second (NaN when unavailable).
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: f64,
}

/// Times `rounds` calls of `step` over `files` cycled.
fn time(files: &[Vec<u8>], rounds: usize, mut step: impl FnMut(&[u8]) -> Result<()>) -> Result<Rate> {
    let (start, cpu0) = (Instant::now(), cpu_ns());
    for bytes in files.iter().cycle().take(rounds) {
        step(bytes)?;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => f64::NAN,
    };
    Ok(Rate { wall: rounds as f64 / wall, cpu: rounds as f64 / cpu })
}

/// Decodes (reduced as `target` allows) and resizes, or only decodes.
fn run(files: &[Vec<u8>], target: Option<(u32, u32)>, resize: bool, rounds: usize) -> Result<Rate> {
    let limits = DecodeLimits::default();
    let mut resizer = Resizer::new();
    let mut out = Vec::new();
    time(files, rounds, |bytes| {
        let d = decode(bytes, target, &limits)?;
        if resize {
            resizer.resize_into(&d, SIZE, SIZE, ResizeMode::Stretch, &mut out)?;
        }
        black_box((&d, &out));
        Ok(())
    })
}

fn report(name: &str, files: &[Vec<u8>]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let rounds = MIN_DECODES.div_ceil(files.len()) * files.len();
    run(files, None, true, files.len())?; // warm-up: page in, grow buffers
    println!("{name}: {} files, {rounds} decodes per line, 1 thread, {SIZE}×{SIZE} stretch", files.len());
    println!("  {:34} {:>9} {:>13} {:>18}", "", "img/s", "img/CPU-s", "decode only img/s");
    let lines = [
        ("(a) full decode + resize", None),
        ("(b) scaled decode + resize", Some((SIZE, SIZE))),
        // Half the target: any fixture JPEG then decodes at 1/2 at least, even where that
        // drops below 300 px (what OpenCV's IMREAD_REDUCED_COLOR_2 does); for comparison only.
        ("(c) decode for 150×150 + resize", Some((SIZE / 2, SIZE / 2))),
    ];
    let mut cpu = [0.0; 3];
    for (i, (label, target)) in lines.into_iter().enumerate() {
        let both = run(files, target, true, rounds)?;
        let decode_only = run(files, target, false, rounds)?;
        println!("  {label:34} {:9.1} {:13.1} {:18.1}", both.wall, both.cpu, decode_only.wall);
        cpu[i] = both.cpu;
    }
    println!("  speed-up (b)/(a) per CPU-second: {:.2}×", cpu[1] / cpu[0]);
    Ok(())
}

/// Re-encodes a JPEG upscaled `factor`× (quality 90, 4:2:0), standing in for camera photos.
fn upscaled(jpeg: &[u8], factor: u32) -> Result<Vec<u8>> {
    let d = decode(jpeg, None, &DecodeLimits::default())?;
    let (w, h) = (d.rgb.width() * factor, d.rgb.height() * factor);
    let big = image::imageops::resize(&d.rgb, w, h, image::imageops::FilterType::Triangle);
    let mut c = turbojpeg::Compressor::new()?;
    c.set_quality(90)?;
    c.set_subsamp(turbojpeg::Subsamp::Sub2x2)?;
    let img = turbojpeg::Image {
        pixels: big.as_raw().as_slice(),
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    Ok(c.compress_to_vec(img)?)
}

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/photos");
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
        .collect();
    names.sort();
    let mut photos = Vec::new();
    let mut jpegs = Vec::new();
    for p in &names {
        let bytes = std::fs::read(p)?;
        if p.extension().is_some_and(|x| x == "jpg") {
            jpegs.push(bytes.clone());
        }
        photos.push(bytes);
    }
    report("fixture photos (JPEG + PNG)", &photos)?;
    report("fixture JPEGs", &jpegs)?;
    let big = jpegs.iter().map(|j| upscaled(j, 3)).collect::<Result<Vec<_>>>()?;
    report("fixture JPEGs upscaled 3× (≈ 2300×1700, q90 4:2:0)", &big)?;
    let kite = Path::new("/usr/share/darknet/data/kite.jpg");
    if kite.exists() {
        report("darknet kite.jpg (1352×900)", &[std::fs::read(kite)?])?;
    }
    Ok(())
}
