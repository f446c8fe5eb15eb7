//! The protobuf wire format, just enough to edit an ONNX model without a schema: a message is
//! read as its fields in order (number, wire type, payload borrowed from the input) and written
//! back byte for byte, so fields this code does not know (and their order) survive an edit.
//! Bounds: every length is checked against the bytes left, varints are at most 10 bytes, and
//! nothing recurses; a malformed message is an `Err`, never a panic.

use std::borrow::Cow;

/// Why bytes are not a protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ends inside a field.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A varint longer than 10 bytes or above u64.
    #[error("bad varint at byte {0}")]
    Varint(usize),
    /// A wire type this format does not have (or the deprecated groups).
    #[error("unsupported wire type {wire} at byte {at}")]
    WireType {
        /// The wire type.
        wire: u8,
        /// Offset of the field's key.
        at: usize,
    },
}

/// A field's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (8 bytes) or 5 (4 bytes), kept as read.
    Fixed(&'a [u8]),
    /// Wire type 2: bytes, a string, a sub-message or a packed array.
    Len(Cow<'a, [u8]>),
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field number.
    pub number: u32,
    /// Payload.
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// A length-delimited field holding `bytes`.
    pub fn len(number: u32, bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        Self { number, value: Value::Len(bytes.into()) }
    }

    /// A varint field.
    pub fn varint(number: u32, v: u64) -> Self {
        Self { number, value: Value::Varint(v) }
    }

    /// The payload of a length-delimited field.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Len(b) => Some(b),
            _ => None,
        }
    }

    /// The payload of a length-delimited field as UTF-8 (`None` if it is not).
    pub fn str(&self) -> Option<&str> {
        self.bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// Read a varint at `*pos`.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let start = *pos;
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos).ok_or(WireError::Truncated(start))?;
        *pos += 1;
        let bits = u64::from(b & 0x7f);
        // the 10th byte may carry only the top bit of a u64
        if i == 9 && bits > 1 {
            return Err(WireError::Varint(start));
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireError::Varint(start))
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: u64) -> Result<&'a [u8], WireError> {
    let start = *pos;
    let end = usize::try_from(n)
        .ok()
        .and_then(|n| start.checked_add(n))
        .filter(|&end| end <= buf.len())
        .ok_or(WireError::Truncated(start))?;
    *pos = end;
    Ok(&buf[start..end])
}

/// Split a message into its fields, in order.
pub fn parse(buf: &[u8]) -> Result<Vec<Field<'_>>, WireError> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let at = pos;
        let key = read_varint(buf, &mut pos)?;
        let number = u32::try_from(key >> 3).map_err(|_| WireError::Varint(at))?;
        let value = match (key & 7) as u8 {
            0 => Value::Varint(read_varint(buf, &mut pos)?),
            1 => Value::Fixed(take(buf, &mut pos, 8)?),
            2 => {
                let n = read_varint(buf, &mut pos)?;
                Value::Len(Cow::Borrowed(take(buf, &mut pos, n)?))
            }
            5 => Value::Fixed(take(buf, &mut pos, 4)?),
            wire => return Err(WireError::WireType { wire, at }),
        };
        fields.push(Field { number, value });
    }
    Ok(fields)
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Write fields back as a message (the inverse of [`parse`]).
pub fn write(fields: &[Field<'_>]) -> Vec<u8> {
    let size: usize = fields.iter().map(|f| 16 + f.bytes().map_or(8, <[u8]>::len)).sum();
    let mut out = Vec::with_capacity(size);
    for f in fields {
        let number = u64::from(f.number) << 3;
        match &f.value {
            Value::Varint(v) => {
                write_varint(&mut out, number);
                write_varint(&mut out, *v);
            }
            Value::Fixed(b) => {
                write_varint(&mut out, number | if b.len() == 8 { 1 } else { 5 });
                out.extend_from_slice(b);
            }
            Value::Len(b) => {
                write_varint(&mut out, number | 2);
                write_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

/// The values of a repeated integer field, packed or not (`None` if one is malformed).
pub fn repeated_varints(fields: &[Field<'_>], number: u32) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    for f in fields.iter().filter(|f| f.number == number) {
        match &f.value {
            Value::Varint(v) => out.push(*v),
            Value::Len(b) => {
                let mut pos = 0;
                while pos < b.len() {
                    out.push(read_varint(b, &mut pos).ok()?);
                }
            }
            Value::Fixed(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_byte() {
        // field 1 varint 150, field 2 "hi", field 3 fixed32, field 4 fixed64, field 1 again
        let msg = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x08,
            0x01,
        ];
        let fields = parse(&msg).expect("test data");
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[0], Field::varint(1, 150));
        assert_eq!(fields[1].str(), Some("hi"));
        assert_eq!(write(&fields), msg);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        // a length past the end
        assert_eq!(parse(&[0x12, 0x05, b'a']), Err(WireError::Truncated(2)));
        // a huge length
        assert!(parse(&[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        // an unterminated varint
        assert_eq!(parse(&[0x08, 0x80]), Err(WireError::Truncated(1)));
        // an 11-byte varint
        assert_eq!(
            parse(&[0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(WireError::Varint(1))
        );
        // groups (wire type 3)
        assert_eq!(parse(&[0x0b]), Err(WireError::WireType { wire: 3, at: 0 }));
        // a fixed64 cut short
        assert_eq!(parse(&[0x09, 1, 2, 3]), Err(WireError::Truncated(1)));
    }

    #[test]
    fn repeated_ints_packed_or_not() {
        let packed = write(&[Field::len(1, vec![0x03, 0x8e, 0x02])]);
        assert_eq!(repeated_varints(&parse(&packed).expect("test data"), 1), Some(vec![3, 270]));
        let plain = write(&[Field::varint(1, 3), Field::varint(2, 9), Field::varint(1, 270)]);
        assert_eq!(repeated_varints(&parse(&plain).expect("test data"), 1), Some(vec![3, 270]));
        assert_eq!(
            repeated_varints(&parse(&write(&[Field::len(1, vec![0x80])])).expect("test data"), 1),
            None
        );
    }
}
