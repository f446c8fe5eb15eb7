//! Text building for the format writers, on their hot path (a million boxes at 100k images):
//! decimal integers and fixed-point numbers appended without `core::fmt` (whose padding and
//! exact float paths dominated the per-box cost), trimmed decimals, and XML escaping.

/// Append the decimal digits of `n`.
pub(crate) fn push_uint(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// Append `n` in decimal, with a sign when negative.
pub(crate) fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_uint(out, n.unsigned_abs());
}

/// Append `v` with `places` decimals (at most 9), rounded half away from zero: what `{:.N}`
/// prints for box coordinates, without its exact (big-number) path.
pub(crate) fn push_fixed(out: &mut String, v: f64, places: u32) {
    use std::fmt::Write as _;
    let places = places.min(9);
    let p = 10u64.pow(places);
    let n = (v.abs() * p as f64).round();
    if !n.is_finite() || n >= 1e18 {
        // Not finite or too large for the integer path.
        let _ = write!(out, "{v:.*}", places as usize);
        return;
    }
    let n = n as u64;
    if v < 0.0 && n != 0 {
        out.push('-');
    }
    push_uint(out, n / p);
    if places > 0 {
        out.push('.');
        let frac = n % p;
        let mut digits = 1;
        while digits < places && frac >= 10u64.pow(digits) {
            digits += 1;
        }
        for _ in digits..places {
            out.push('0');
        }
        push_uint(out, frac);
    }
}

/// As [`push_fixed`], without trailing zeros (nor a trailing `.`): `0.91` for 0.91 at 5
/// places, `1` for 1.0.
pub(crate) fn push_trimmed(out: &mut String, v: f64, places: u32) {
    let start = out.len();
    push_fixed(out, v, places);
    if out[start..].contains('.') {
        let keep = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(keep);
    }
}

/// Escape text for XML content and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a JSON string literal (quoted and escaped).
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_trimmed_decimals() {
        let mut s = String::new();
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            push_uint(&mut s, n);
            s.push(' ');
        }
        push_int(&mut s, -42);
        s.push(' ');
        push_int(&mut s, i64::MIN);
        assert_eq!(s, format!("0 7 10 1234567890 {} -42 {}", u64::MAX, i64::MIN));
        let trimmed = |v: f64| {
            let mut s = String::new();
            push_trimmed(&mut s, v, 5);
            s
        };
        assert_eq!(
            [trimmed(0.91), trimmed(1.0), trimmed(0.873456716), trimmed(0.000001), trimmed(10.5)],
            ["0.91", "1", "0.87346", "0", "10.5"]
        );
        let fixed = |v: f64, p: u32| {
            let mut s = String::new();
            push_fixed(&mut s, v, p);
            s
        };
        assert_eq!([fixed(0.05, 2), fixed(3.000042, 6), fixed(-1.5, 0)], ["0.05", "3.000042", "-2"]);
    }
}
