//! PNG ancillary chunks that a labeller never needs and that can cost far more memory than the
//! file: `iCCP` (a zlib-compressed ICC profile: a 1 MB file can inflate to 1 GiB, which the
//! decoder would hold beside the frame), `zTXt`/`iTXt` (compressed text) and `tEXt`. They are
//! dropped before decoding, so the memory of a PNG decode is bounded by the frame itself
//! (checked against [`super::DecodeLimits`]) plus the file. Colour profiles are not applied
//! anyway: the reference pipeline (Pillow `convert("RGB")`) ignores them too. `eXIf` (the
//! orientation) and every critical chunk are kept byte for byte.

use std::borrow::Cow;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
const DROPPED: [&[u8; 4]; 4] = [b"iCCP", b"zTXt", b"iTXt", b"tEXt"];

/// `bytes` without the [`DROPPED`] chunks; unchanged (borrowed) when it has none, or when the
/// chunk structure is broken (the decoder then reports the file as corrupt).
pub(super) fn without_bulky_ancillary(bytes: &[u8]) -> Cow<'_, [u8]> {
    let Some(spans) = chunk_spans(bytes) else { return Cow::Borrowed(bytes) };
    if !spans.iter().any(|(start, _)| is_dropped(&bytes[start + 4..start + 8])) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(SIGNATURE);
    for (start, end) in spans {
        if !is_dropped(&bytes[start + 4..start + 8]) {
            out.extend_from_slice(&bytes[start..end]);
        }
    }
    Cow::Owned(out)
}

fn is_dropped(kind: &[u8]) -> bool {
    DROPPED.iter().any(|d| d.as_slice() == kind)
}

/// `[start, end)` of every chunk (length, type, data, CRC) up to and including `IEND`, or
/// `None` when a length runs past the end of the file.
fn chunk_spans(bytes: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let mut pos = SIGNATURE.len();
    if !bytes.starts_with(SIGNATURE) {
        return None;
    }
    while pos < bytes.len() {
        let header = bytes.get(pos..pos.checked_add(8)?)?;
        let len = usize::try_from(u32::from_be_bytes([header[0], header[1], header[2], header[3]])).ok()?;
        let end = pos.checked_add(12)?.checked_add(len)?;
        if end > bytes.len() {
            return None;
        }
        spans.push((pos, end));
        if &header[4..8] == b"IEND" {
            break;
        }
        pos = end;
    }
    Some(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0, 0, 0, 0]); // CRC: not checked here
        c
    }

    fn png(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        chunks.iter().for_each(|c| v.extend_from_slice(c));
        v
    }

    #[test]
    fn drops_profiles_and_text_keeps_the_rest_in_order() {
        let (ihdr, exif, idat, iend) =
            (chunk(b"IHDR", &[1; 13]), chunk(b"eXIf", b"MM"), chunk(b"IDAT", &[7; 5]), chunk(b"IEND", &[]));
        let input = png(&[
            ihdr.clone(),
            chunk(b"iCCP", b"x\0\0zz"),
            exif.clone(),
            chunk(b"tEXt", b"k\0v"),
            idat.clone(),
            chunk(b"zTXt", b"k\0\0z"),
            iend.clone(),
        ]);
        let out = without_bulky_ancillary(&input);
        assert_eq!(out.as_ref(), png(&[ihdr, exif, idat, iend]).as_slice());
    }

    #[test]
    fn files_without_such_chunks_or_with_broken_lengths_are_untouched() {
        let plain = png(&[chunk(b"IHDR", &[1; 13]), chunk(b"IEND", &[])]);
        assert!(matches!(without_bulky_ancillary(&plain), Cow::Borrowed(_)));
        let mut broken = png(&[chunk(b"IHDR", &[1; 13]), chunk(b"iCCP", b"x\0\0zz")]);
        broken[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(without_bulky_ancillary(&broken), Cow::Borrowed(_)));
        assert!(matches!(without_bulky_ancillary(b"not a png"), Cow::Borrowed(_)));
    }
}
