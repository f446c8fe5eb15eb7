//! JSON tensor `data` as the server and the client read it: nested or flat arrays of numbers,
//! flattened row-major straight into a compact vector while the body is parsed, with no
//! `serde_json::Value` tree (one byte per UINT8 input element, eight per output number instead
//! of a 32-byte `Value` and the stack that walks it). Every element takes at least two bytes of
//! JSON text (`0,`), so a JSON tensor never holds more than half its text in UINT8 values or
//! four times it in numbers. A value of the wrong kind is kept as the first fault and reported
//! under the tensor's field name once the datatype and the shape have been checked.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::protocol::ProtocolError;

/// An element type of flattened JSON data.
pub trait Element: Copy + Serialize {
    /// What the elements are, for error messages (`is not a UINT8`).
    const KIND: &'static str;
    /// The element for a JSON unsigned integer, if it is one.
    fn from_u64(v: u64) -> Option<Self>;
    /// The element for a JSON negative integer, if it is one.
    fn from_i64(v: i64) -> Option<Self>;
    /// The element for a JSON float, if it is one.
    fn from_f64(v: f64) -> Option<Self>;
}

impl Element for u8 {
    const KIND: &'static str = "UINT8";
    fn from_u64(v: u64) -> Option<Self> {
        u8::try_from(v).ok()
    }
    fn from_i64(v: i64) -> Option<Self> {
        u8::try_from(v).ok()
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
}

impl Element for f64 {
    const KIND: &'static str = "number";
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
}

/// Row-major tensor data read from JSON (any nesting), or its first invalid value.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatData<T> {
    values: Vec<T>,
    invalid: Option<String>,
}

impl<T> Default for FlatData<T> {
    fn default() -> Self {
        Self { values: Vec::new(), invalid: None }
    }
}

impl<T: Element> FlatData<T> {
    /// Data made of these values.
    pub fn new(values: Vec<T>) -> Self {
        Self { values, invalid: None }
    }

    /// The values, or why they are not `T`s (naming `field`), or a count other than `want`.
    pub fn values(&self, field: &str, want: usize) -> Result<&[T], ProtocolError> {
        if let Some(v) = &self.invalid {
            let reason = format!("{v} is not a {}", T::KIND);
            return Err(ProtocolError::Data { field: field.into(), reason });
        }
        if self.values.len() != want {
            let reason = format!("{} values for a shape of {want}", self.values.len());
            return Err(ProtocolError::Data { field: field.into(), reason });
        }
        Ok(&self.values)
    }

    fn push(&mut self, v: Option<T>, shown: impl fmt::Display) {
        match v {
            Some(v) if self.invalid.is_none() => self.values.push(v),
            Some(_) => {}
            None => {
                if self.invalid.is_none() {
                    self.invalid = Some(shown.to_string());
                    // Nothing more is needed once the data is known to be bad.
                    self.values = Vec::new();
                }
            }
        }
    }
}

impl<T: Element> Serialize for FlatData<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.values.serialize(s)
    }
}

impl<'de, T: Element> Deserialize<'de> for FlatData<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut data = FlatData::default();
        Flatten(&mut data).deserialize(d)?;
        Ok(data)
    }
}

/// Appends every number under one JSON value (recursing into arrays) to the data.
struct Flatten<'a, T>(&'a mut FlatData<T>);

impl<'de, T: Element> DeserializeSeed<'de> for Flatten<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(FlattenVisitor(self.0, PhantomData))
    }
}

struct FlattenVisitor<'a, T>(&'a mut FlatData<T>, PhantomData<T>);

impl<'de, T: Element> Visitor<'de> for FlattenVisitor<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} or an array of them", T::KIND)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push(T::from_u64(v), v);
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push(T::from_i64(v), v);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push(T::from_f64(v), v);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push(None, v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push(None, format_args!("{v:?}"));
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push(None, "null");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.0.push(None, "an object");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u8s(text: &str) -> FlatData<u8> {
        serde_json::from_str(text).expect("parses")
    }

    #[test]
    fn nested_and_flat_arrays_flatten_row_major() {
        assert_eq!(u8s("[[[0, 1], [2]], [3, 255]]").values("d", 5).expect("ok"), &[0, 1, 2, 3, 255]);
        assert_eq!(u8s("[]").values("d", 0).expect("ok"), &[] as &[u8]);
        assert_eq!(u8s("7").values("d", 1).expect("ok"), &[7]);
        let f: FlatData<f64> = serde_json::from_str("[[1.5, -2], [3e2]]").expect("parses");
        assert_eq!(f.values("d", 3).expect("ok"), &[1.5, -2.0, 300.0]);
        assert_eq!(serde_json::to_string(&FlatData::new(vec![1u8, 2])).expect("json"), "[1,2]");
    }

    #[test]
    fn the_first_bad_value_and_the_count_are_reported_with_the_field() {
        for (text, shown) in [
            ("[0, 256, 1]", "256"),
            ("[0, -1]", "-1"),
            ("[1.5]", "1.5"),
            ("[[0], \"x\"]", "\"x\""),
            ("[null]", "null"),
            ("[true]", "true"),
            ("[{\"a\": [1]}]", "an object"),
        ] {
            let err = u8s(text).values("inputs[0].data", 1).expect_err(text).to_string();
            assert_eq!(err, format!("inputs[0].data: {shown} is not a UINT8"), "{text}");
        }
        let err = u8s("[0, 1, 2]").values("inputs[0].data", 6).expect_err("count").to_string();
        assert_eq!(err, "inputs[0].data: 3 values for a shape of 6");
    }

    #[test]
    fn memory_is_bounded_by_the_text_not_by_a_value_tree() {
        // 1M elements of "0,": 2 MB of text, 1 MB of values (a Value tree would be 32 MB).
        let text = format!("[{}0]", "0,".repeat(999_999));
        let d = u8s(&text);
        assert_eq!(d.values("d", 1_000_000).expect("ok").len(), 1_000_000);
        assert!(d.values.capacity() <= 2 * 1_000_000, "capacity {}", d.values.capacity());
        // Bad data keeps nothing.
        let bad = u8s(&format!("[300,{}0]", "0,".repeat(999_999)));
        assert_eq!(bad.values.capacity(), 0);
    }
}
