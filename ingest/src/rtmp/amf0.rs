//! AMF0 (Action Message Format 0), the encoding of RTMP commands (`connect`, `publish`, …) and of
//! data messages (`@setDataFrame onMetaData`).
//!
//! Decoding reads bytes a peer sent before it has proved anything, so it is bounded twice: objects
//! and arrays may nest at most [`MAX_DEPTH`] deep (deep nesting is how one 80 KB command used to
//! overflow a runtime thread's stack and abort the whole process), and one message may hold at
//! most [`MAX_VALUES`] values in all (so a small message cannot make us allocate a huge tree).
//! Declared counts are never trusted for allocation. Every failure is an [`Amf0Error`] for the one
//! connection that sent it; this module must never panic or recurse without a bound. AMF3 (the
//! `avmplus` switch) is refused: publishers send AMF0.

use std::fmt;

/// Nesting allowed for objects and arrays. Real commands nest two or three levels (`connect`'s
/// command object holds `fourCcList`, an array); the bound keeps recursion far from the stack's end.
pub const MAX_DEPTH: usize = 16;

/// Values allowed in one decoded message, counting every nested value and property.
pub const MAX_VALUES: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    /// A string or long string (AMF0 `0x02`/`0x0C`); invalid UTF-8 is replaced, not refused, since
    /// encoders put free text (their own names) here.
    String(String),
    /// An anonymous object, an ECMA array or a typed object: ordered properties.
    Object(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    Null,
    Undefined,
    /// Milliseconds since the epoch; the time-zone field is read and ignored, as the spec says.
    Date(f64),
}

impl Amf0Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The property `name` of an object (the first one, if a peer repeated it).
    pub fn get(&self, name: &str) -> Option<&Amf0Value> {
        match self {
            Amf0Value::Object(properties) => properties.iter().find(|(key, _)| key == name).map(|(_, value)| value),
            _ => None,
        }
    }

    /// An object from `(name, value)` pairs, for building replies.
    pub fn object<const N: usize>(properties: [(&str, Amf0Value); N]) -> Amf0Value {
        Amf0Value::Object(properties.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn string(s: &str) -> Amf0Value {
        Amf0Value::String(s.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    #[error("AMF0 {what} at byte {offset} is truncated")]
    Truncated { what: &'static str, offset: usize },
    #[error("AMF0 values nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("AMF0 message holds more than {MAX_VALUES} values")]
    TooManyValues,
    #[error("AMF0 type marker {marker:#04x} at byte {offset} is not supported")]
    UnsupportedMarker { marker: u8, offset: usize },
}

/// Type markers. Movie clips (0x04), references (0x07) and the AMF3 switch (0x11) are refused:
/// publishers never send them, and references would let a small message describe a huge tree.
mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0a;
    pub const DATE: u8 = 0x0b;
    pub const LONG_STRING: u8 = 0x0c;
    pub const UNSUPPORTED: u8 = 0x0d;
    pub const XML_DOCUMENT: u8 = 0x0f;
    pub const TYPED_OBJECT: u8 = 0x10;
}

/// Decodes every value in `bytes`, in order (a command is a sequence of top-level values).
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut reader = Reader { bytes, offset: 0, values: 0 };
    let mut values = Vec::new();
    while reader.offset < bytes.len() {
        values.push(reader.value(0)?);
    }
    Ok(values)
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    /// Values decoded so far in this message, nested ones included.
    values: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Amf0Error> {
        let end = self.offset.checked_add(n).filter(|end| *end <= self.bytes.len());
        let Some(end) = end else { return Err(Amf0Error::Truncated { what, offset: self.offset }) };
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Amf0Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Amf0Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Amf0Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, Amf0Error> {
        let b = self.take(8, what)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(f64::from_be_bytes(raw))
    }

    fn utf8(&mut self, len: usize, what: &'static str) -> Result<String, Amf0Error> {
        Ok(String::from_utf8_lossy(self.take(len, what)?).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(Amf0Error::TooManyValues);
        }
        let at = self.offset;
        let value = match self.u8("type marker")? {
            marker::NUMBER => Amf0Value::Number(self.f64("number")?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8("boolean")? != 0),
            marker::STRING => {
                let len = self.u16("string length")?;
                Amf0Value::String(self.utf8(usize::from(len), "string")?)
            }
            marker::LONG_STRING | marker::XML_DOCUMENT => {
                let len = self.u32("long string length")?;
                Amf0Value::String(self.utf8(len as usize, "long string")?)
            }
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED | marker::UNSUPPORTED => Amf0Value::Undefined,
            marker::OBJECT => Amf0Value::Object(self.properties(depth)?),
            marker::ECMA_ARRAY => {
                // The declared count is advisory (encoders get it wrong); the end marker decides.
                self.u32("ECMA array count")?;
                Amf0Value::Object(self.properties(depth)?)
            }
            marker::TYPED_OBJECT => {
                let len = self.u16("class name length")?;
                self.take(usize::from(len), "class name")?;
                Amf0Value::Object(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32("strict array count")?;
                let nested = self.nested(depth)?;
                // No allocation from the declared count: each element is read, and counted, first.
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(nested)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64("date")?;
                self.u16("date time zone")?;
                Amf0Value::Date(millis)
            }
            other => return Err(Amf0Error::UnsupportedMarker { marker: other, offset: at }),
        };
        Ok(value)
    }

    fn nested(&self, depth: usize) -> Result<usize, Amf0Error> {
        if depth + 1 >= MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        Ok(depth + 1)
    }

    /// Properties up to the object-end marker (`00 00 09`). An ECMA array whose end marker is
    /// missing at the very end of the message is accepted: some encoders omit it in onMetaData.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let nested = self.nested(depth)?;
        let mut properties = Vec::new();
        loop {
            if self.offset == self.bytes.len() {
                return Ok(properties);
            }
            let len = self.u16("property name length")?;
            if len == 0 {
                if self.offset == self.bytes.len() {
                    return Ok(properties);
                }
                if self.bytes[self.offset] == marker::OBJECT_END {
                    self.offset += 1;
                    return Ok(properties);
                }
            }
            let name = self.utf8(usize::from(len), "property name")?;
            let value = self.value(nested)?;
            properties.push((name, value));
        }
    }
}

/// Appends the AMF0 encoding of `value` to `out`. Encoding our own replies cannot fail; nesting is
/// whatever the caller built.
pub fn encode(value: &Amf0Value, out: &mut Vec<u8>) {
    match value {
        Amf0Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
        Amf0Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(marker::STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => {
                out.push(marker::LONG_STRING);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        },
        Amf0Value::Object(properties) => {
            out.push(marker::OBJECT);
            for (name, value) in properties {
                // Property names longer than 64 KiB cannot be written; ours are short constants.
                let name = &name.as_bytes()[..name.len().min(usize::from(u16::MAX))];
                out.extend_from_slice(&(name.len() as u16).to_be_bytes());
                out.extend_from_slice(name);
                encode(value, out);
            }
            out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        }
        Amf0Value::StrictArray(items) => {
            out.push(marker::STRICT_ARRAY);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Amf0Value::Null => out.push(marker::NULL),
        Amf0Value::Undefined => out.push(marker::UNDEFINED),
        Amf0Value::Date(millis) => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
}

/// Encodes a sequence of values, as a command or data message body.
pub fn encode_all(values: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode(value, &mut out);
    }
    out
}

impl fmt::Display for Amf0Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf0Value::Number(n) => write!(f, "{n}"),
            Amf0Value::Boolean(b) => write!(f, "{b}"),
            Amf0Value::String(s) => write!(f, "{s:?}"),
            Amf0Value::Object(p) => write!(f, "{{{} properties}}", p.len()),
            Amf0Value::StrictArray(items) => write!(f, "[{} items]", items.len()),
            Amf0Value::Null => f.write_str("null"),
            Amf0Value::Undefined => f.write_str("undefined"),
            Amf0Value::Date(millis) => write!(f, "date({millis})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let values = vec![
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("fourCcList", Amf0Value::StrictArray(vec![Amf0Value::string("hvc1"), Amf0Value::string("av01")])),
                ("flag", Amf0Value::Boolean(true)),
                ("nothing", Amf0Value::Null),
                ("undef", Amf0Value::Undefined),
                ("when", Amf0Value::Date(1.5e12)),
            ]),
            Amf0Value::String("x".repeat(70_000)),
        ];
        assert_eq!(decode_all(&encode_all(&values)).expect("decode"), values);
    }

    #[test]
    fn reads_ecma_arrays_with_wrong_counts_and_a_missing_end() {
        // onMetaData as an ECMA array claiming 99 entries, holding one, with the end marker.
        let mut bytes = vec![marker::ECMA_ARRAY, 0, 0, 0, 99, 0, 5];
        bytes.extend(b"width");
        bytes.push(marker::NUMBER);
        bytes.extend(1280f64.to_be_bytes());
        let mut with_end = bytes.clone();
        with_end.extend([0, 0, marker::OBJECT_END]);
        let expected = Amf0Value::object([("width", Amf0Value::Number(1280.0))]);
        assert_eq!(decode_all(&with_end).expect("with end"), vec![expected.clone()]);
        assert_eq!(decode_all(&bytes).expect("without end"), vec![expected]);
    }

    #[test]
    fn typed_objects_and_xml_are_read_as_objects_and_strings() {
        let mut bytes = vec![marker::TYPED_OBJECT, 0, 3];
        bytes.extend(b"Cls");
        bytes.extend([0, 1, b'a', marker::BOOLEAN, 1, 0, 0, marker::OBJECT_END]);
        bytes.extend([marker::XML_DOCUMENT, 0, 0, 0, 2, b'<', b'>']);
        let values = decode_all(&bytes).expect("decode");
        assert_eq!(values, vec![Amf0Value::object([("a", Amf0Value::Boolean(true))]), Amf0Value::string("<>")]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // The attack from the security review: `connect`, a number, then `00 01 61 03` 20,000 times.
        let mut bytes = encode_all(&[Amf0Value::string("connect"), Amf0Value::Number(1.0)]);
        bytes.push(marker::OBJECT);
        for _ in 0..20_000 {
            bytes.extend([0, 1, b'a', marker::OBJECT]);
        }
        assert_eq!(decode_all(&bytes), Err(Amf0Error::TooDeep));
        // Strict arrays nest the same way.
        let arrays: Vec<u8> = std::iter::repeat_n([marker::STRICT_ARRAY, 0, 0, 0, 1], 10_000).flatten().collect();
        assert_eq!(decode_all(&arrays), Err(Amf0Error::TooDeep));
        // Nesting just inside the bound is fine.
        let mut ok = vec![];
        for _ in 0..MAX_DEPTH - 1 {
            ok.extend([marker::STRICT_ARRAY, 0, 0, 0, 1]);
        }
        ok.push(marker::NULL);
        assert!(decode_all(&ok).is_ok());
    }

    #[test]
    fn value_count_is_bounded_and_declared_counts_are_not_trusted() {
        let nulls = vec![marker::NULL; MAX_VALUES + 1];
        assert_eq!(decode_all(&nulls), Err(Amf0Error::TooManyValues));
        // A strict array claiming 4 billion items in 5 bytes ends as truncated, without allocating.
        assert_eq!(
            decode_all(&[marker::STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff]),
            Err(Amf0Error::Truncated { what: "type marker", offset: 5 })
        );
    }

    #[test]
    fn truncated_and_unknown_input_is_an_error() {
        assert!(matches!(decode_all(&[marker::NUMBER, 0, 0]), Err(Amf0Error::Truncated { what: "number", .. })));
        assert!(matches!(decode_all(&[marker::STRING, 0, 9, b'a']), Err(Amf0Error::Truncated { what: "string", .. })));
        assert!(matches!(decode_all(&[0x11]), Err(Amf0Error::UnsupportedMarker { marker: 0x11, offset: 0 })));
        assert!(matches!(decode_all(&[0x07, 0, 1]), Err(Amf0Error::UnsupportedMarker { .. })));
        assert!(matches!(decode_all(&[0x04]), Err(Amf0Error::UnsupportedMarker { .. })));
        assert!(decode_all(&[]).expect("empty").is_empty());
    }
}
