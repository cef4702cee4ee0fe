//! A read-only decoder for Cosmos DB's binary JSON encoding.
//!
//! The official Rust SDK (`azure_data_cosmos` 1.x) sends item bodies
//! (create, replace, upsert) in Cosmos binary JSON rather than JSON text. A
//! binary buffer opens with the preamble byte `0x80`, which no JSON text can
//! start with, and then holds one value. Every value starts with a one-byte
//! type marker; multi-byte numbers and lengths are little-endian.
//!
//! # Coverage
//!
//! | marker | meaning |
//! |---|---|
//! | `0x00..=0x1F` | integer equal to the marker |
//! | `0x80..=0xBF` | UTF-8 string of `marker - 0x80` bytes (0 to 63) |
//! | `0xC0` / `0xC1` / `0xC2` | UTF-8 string with a 1/2/4-byte length |
//! | `0xC7` | unsigned 64-bit integer |
//! | `0xC8` / `0xC9` / `0xCA` / `0xCB` | `u8` / `i16` / `i32` / `i64` number |
//! | `0xCC` | 64-bit float (the usual JSON number) |
//! | `0xCD` / `0xCE` / `0xCF` | 32/64/16-bit float |
//! | `0xD0` / `0xD1` / `0xD2` | `null` / `false` / `true` |
//! | `0xD7`..`0xDC` | typed `u8`, `i8`, `i16`, `i32`, `i64`, `u32` |
//! | `0xE0` / `0xE1` | empty array / array of one item |
//! | `0xE2`..`0xE4` | array with a 1/2/4-byte byte length |
//! | `0xE5`..`0xE7` | array with a 1/2/4-byte byte length, then item count |
//! | `0xE8`..`0xEF` | objects, in the same eight forms as arrays |
//!
//! That is a superset of what the Rust SDK's encoder writes (literal
//! integers, `0xC7`, `0xCB`, `0xCC`, `null`/`false`/`true`, the length-marked
//! strings `0x80..=0xC2`, and the length-and-count containers `0xE5..=0xE7`,
//! `0xED..=0xEF`). The forms that need state or tables this decoder does not
//! carry are refused with [`BinaryJsonError::UnsupportedMarker`]: system
//! strings and user-dictionary strings (`0x20..=0x67`), base64, GUID and
//! packed strings (`0x71..=0x7F`), reference strings (`0xC3..=0xC6`), raw
//! GUIDs (`0xD3`), binary blobs (`0xDD..=0xDF`) and uniform number arrays
//! (`0xF0..=0xF3`). No SDK sends those to a server.
//!
//! # Limits
//!
//! The decoder never panics: every read is bounds-checked, nesting is capped
//! at [`MAX_DEPTH`], a container's items must fit its declared byte length
//! (and match its declared count), and nothing may follow the root
//! value. Object properties keep their order; a repeated name keeps its first
//! position and its last value, as `serde_json` does for JSON text. A float
//! that is not finite is refused, since JSON text cannot hold it.
//!
//! # Example
//!
//! ```
//! use tributary_wire::binary_json;
//!
//! // {"id": "a", "n": 7}
//! let bytes = [0x80, 0xED, 0x08, 0x02, 0x82, b'i', b'd', 0x81, b'a', 0x81, b'n', 0x07];
//! assert!(binary_json::is_binary(&bytes));
//! let value = binary_json::decode(&bytes)?;
//! assert_eq!(value, serde_json::json!({"id": "a", "n": 7}));
//! # Ok::<(), binary_json::BinaryJsonError>(())
//! ```

use serde_json::{Map, Number, Value};

/// The first byte of every Cosmos binary JSON buffer.
pub const PREAMBLE: u8 = 0x80;

/// How deeply arrays and objects may nest before [`decode`] refuses the buffer: as deep as
/// `serde_json` reads JSON text (its recursion limit of 128 counts one level more), so that a
/// decoded item can be stored as text and read back, and a binary body is held to the same
/// limit as a text one.
pub const MAX_DEPTH: usize = 127;

/// Why a buffer is not Cosmos binary JSON that [`decode`] can read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BinaryJsonError {
    /// The buffer is empty or does not start with [`PREAMBLE`].
    #[error("binary JSON must start with the preamble byte 0x80")]
    MissingPreamble,
    /// A value, length or container runs past the end of the buffer or of its container.
    #[error(
        "binary JSON ends early, or a value runs past its array or object: \
         {needed} more byte(s) needed at offset {offset}"
    )]
    UnexpectedEnd {
        /// Where the cut-off read starts.
        offset: usize,
        /// How many bytes it needed beyond what is there.
        needed: usize,
    },
    /// A type marker this decoder does not read (see the module docs).
    #[error("binary JSON type marker 0x{marker:02X} ({kind}) at offset {offset} is not supported")]
    UnsupportedMarker {
        /// Where the marker is.
        offset: usize,
        /// The marker byte.
        marker: u8,
        /// What the marker stands for in the format, or `unassigned`.
        kind: &'static str,
    },
    /// A string's bytes are not UTF-8.
    #[error("binary JSON string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string's marker is.
        offset: usize,
    },
    /// A float is NaN or infinite, which JSON cannot represent.
    #[error("binary JSON number at offset {offset} is {value}, which JSON cannot represent")]
    NonFiniteNumber {
        /// Where the number's marker is.
        offset: usize,
        /// The value read.
        value: f64,
    },
    /// An object property name is not a string.
    #[error(
        "binary JSON object property name at offset {offset} has marker 0x{marker:02X}, not a string"
    )]
    NonStringPropertyName {
        /// Where the name's marker is.
        offset: usize,
        /// The marker byte found instead.
        marker: u8,
    },
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    #[error(
        "binary JSON nests arrays and objects deeper than {MAX_DEPTH} levels at offset {offset}"
    )]
    TooDeep {
        /// Where the container that is one level too deep starts.
        offset: usize,
    },
    /// A container holds a different number of items than it declares.
    #[error("binary JSON {kind} at offset {offset} declares {declared} item(s) but holds {found}")]
    CountMismatch {
        /// `array` or `object`.
        kind: &'static str,
        /// Where the container's marker is.
        offset: usize,
        /// The declared item (or property) count.
        declared: usize,
        /// How many it holds.
        found: usize,
    },
    /// Bytes follow the root value.
    #[error("binary JSON has {n_bytes} trailing byte(s) after the value, at offset {offset}")]
    TrailingBytes {
        /// Where the first trailing byte is.
        offset: usize,
        /// How many trailing bytes there are.
        n_bytes: usize,
    },
}

/// Whether `bytes` is Cosmos binary JSON rather than JSON text: it starts with [`PREAMBLE`].
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.first() == Some(&PREAMBLE)
}

/// Decodes a Cosmos binary JSON buffer (preamble included) into a JSON value.
///
/// # Errors
///
/// [`BinaryJsonError`] when the buffer does not start with [`PREAMBLE`], is
/// cut short, uses a marker outside the supported set (see the module docs),
/// holds a string that is not UTF-8 or a float that is not finite, nests
/// deeper than [`MAX_DEPTH`], has a container whose items run past its byte
/// length or do not match its count, or has bytes after the root value.
pub fn decode(bytes: &[u8]) -> Result<Value, BinaryJsonError> {
    if !is_binary(bytes) {
        return Err(BinaryJsonError::MissingPreamble);
    }
    let mut reader = Reader {
        bytes,
        position: 1,
        end: bytes.len(),
    };
    let value = reader.value(0)?;
    if reader.position < bytes.len() {
        return Err(BinaryJsonError::TrailingBytes {
            offset: reader.position,
            n_bytes: bytes.len() - reader.position,
        });
    }
    Ok(value)
}

/// Array or object: the two container kinds share their length forms.
#[derive(Clone, Copy)]
enum ContainerKind {
    Array,
    Object,
}

impl ContainerKind {
    fn name(self) -> &'static str {
        match self {
            ContainerKind::Array => "array",
            ContainerKind::Object => "object",
        }
    }
}

/// How a container says where it ends.
#[derive(Clone, Copy)]
enum ContainerSize {
    /// No items (`0xE0`, `0xE8`).
    Empty,
    /// Exactly one item, with no length (`0xE1`, `0xE9`).
    Single,
    /// A byte length of this many bytes (`0xE2..=0xE4`, `0xEA..=0xEC`).
    Length(usize),
    /// A byte length, then an item count, each of this many bytes
    /// (`0xE5..=0xE7`, `0xED..=0xEF`).
    LengthAndCount(usize),
}

/// A cursor over the input; `end` is the end of the innermost enclosing container.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, or an error if they run past `end`.
    fn take(&mut self, n: usize) -> Result<&'a [u8], BinaryJsonError> {
        let available = self.end - self.position;
        if n > available {
            return Err(BinaryJsonError::UnexpectedEnd {
                offset: self.position,
                needed: n - available,
            });
        }
        let taken = &self.bytes[self.position..self.position + n];
        self.position += n;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BinaryJsonError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, BinaryJsonError> {
        Ok(self.array::<1>()?[0])
    }

    /// An unsigned little-endian integer of 1, 2 or 4 bytes.
    fn unsigned(&mut self, width: usize) -> Result<usize, BinaryJsonError> {
        let value = match width {
            1 => u32::from(self.byte()?),
            2 => u32::from(u16::from_le_bytes(self.array()?)),
            _ => u32::from_le_bytes(self.array()?),
        };
        // A length that does not fit in usize cannot fit in the input either.
        Ok(usize::try_from(value).unwrap_or(usize::MAX))
    }

    fn value(&mut self, depth: usize) -> Result<Value, BinaryJsonError> {
        let offset = self.position;
        let marker = self.byte()?;
        if let Some(string) = self.string_after(marker, offset)? {
            return Ok(Value::String(string));
        }
        let number = |value: f64| -> Result<Value, BinaryJsonError> {
            Number::from_f64(value)
                .map(Value::Number)
                .ok_or(BinaryJsonError::NonFiniteNumber { offset, value })
        };
        let value = match marker {
            0x00..=0x1F => Value::from(marker),
            0xC7 => Value::from(u64::from_le_bytes(self.array()?)),
            0xC8 | 0xD7 => Value::from(self.byte()?),
            0xD8 => Value::from(i8::from_le_bytes(self.array()?)),
            0xC9 | 0xD9 => Value::from(i16::from_le_bytes(self.array()?)),
            0xCA | 0xDA => Value::from(i32::from_le_bytes(self.array()?)),
            0xCB | 0xDB => Value::from(i64::from_le_bytes(self.array()?)),
            0xDC => Value::from(u32::from_le_bytes(self.array()?)),
            0xCC | 0xCE => number(f64::from_le_bytes(self.array()?))?,
            0xCD => number(f64::from(f32::from_le_bytes(self.array()?)))?,
            0xCF => number(half_to_f64(u16::from_le_bytes(self.array()?)))?,
            0xD0 => Value::Null,
            0xD1 => Value::Bool(false),
            0xD2 => Value::Bool(true),
            0xE0..=0xEF => {
                let kind = if marker < 0xE8 {
                    ContainerKind::Array
                } else {
                    ContainerKind::Object
                };
                let size = match marker & 0x07 {
                    0 => ContainerSize::Empty,
                    1 => ContainerSize::Single,
                    2 => ContainerSize::Length(1),
                    3 => ContainerSize::Length(2),
                    4 => ContainerSize::Length(4),
                    5 => ContainerSize::LengthAndCount(1),
                    6 => ContainerSize::LengthAndCount(2),
                    _ => ContainerSize::LengthAndCount(4),
                };
                if depth >= MAX_DEPTH {
                    return Err(BinaryJsonError::TooDeep { offset });
                }
                self.container(kind, size, offset, depth + 1)?
            }
            _ => {
                return Err(BinaryJsonError::UnsupportedMarker {
                    offset,
                    marker,
                    kind: unsupported_kind(marker),
                });
            }
        };
        Ok(value)
    }

    /// The string that `marker` (read at `offset`) introduces, or `None` if
    /// `marker` is not one of the supported string markers.
    fn string_after(
        &mut self,
        marker: u8,
        offset: usize,
    ) -> Result<Option<String>, BinaryJsonError> {
        let length = match marker {
            0x80..=0xBF => usize::from(marker - 0x80),
            0xC0 => self.unsigned(1)?,
            0xC1 => self.unsigned(2)?,
            0xC2 => self.unsigned(4)?,
            _ => return Ok(None),
        };
        let bytes = self.take(length)?;
        std::str::from_utf8(bytes)
            .map(|text| Some(text.to_owned()))
            .map_err(|_| BinaryJsonError::InvalidUtf8 { offset })
    }

    fn container(
        &mut self,
        kind: ContainerKind,
        size: ContainerSize,
        offset: usize,
        depth: usize,
    ) -> Result<Value, BinaryJsonError> {
        let (length, declared_count) = match size {
            ContainerSize::Empty => return Ok(Items::new(kind, 0).into_value()),
            ContainerSize::Single => {
                let mut items = Items::new(kind, 1);
                items.read_one(self, depth)?;
                return Ok(items.into_value());
            }
            ContainerSize::Length(width) => (self.unsigned(width)?, None),
            ContainerSize::LengthAndCount(width) => {
                let length = self.unsigned(width)?;
                (length, Some(self.unsigned(width)?))
            }
        };
        let start = self.position;
        let available = self.end - start;
        if length > available {
            return Err(BinaryJsonError::UnexpectedEnd {
                offset: start,
                needed: length - available,
            });
        }
        let outer_end = self.end;
        self.end = start + length;
        // Every item takes at least one byte, so `length` bounds the allocation.
        let mut items = Items::new(kind, declared_count.unwrap_or(0).min(length));
        let mut n_items = 0;
        while self.position < self.end {
            if let Err(error) = items.read_one(self, depth) {
                self.end = outer_end;
                return Err(error);
            }
            n_items += 1;
        }
        self.end = outer_end;
        if let Some(declared) = declared_count
            && declared != n_items
        {
            return Err(BinaryJsonError::CountMismatch {
                kind: kind.name(),
                offset,
                declared,
                found: n_items,
            });
        }
        Ok(items.into_value())
    }

    /// An object property name.
    fn property_name(&mut self) -> Result<String, BinaryJsonError> {
        let offset = self.position;
        let marker = self.byte()?;
        match self.string_after(marker, offset)? {
            Some(name) => Ok(name),
            None if matches!(marker, 0x20..=0x7F | 0xC3..=0xC6) => {
                Err(BinaryJsonError::UnsupportedMarker {
                    offset,
                    marker,
                    kind: unsupported_kind(marker),
                })
            }
            None => Err(BinaryJsonError::NonStringPropertyName { offset, marker }),
        }
    }
}

/// A container's items as they are read.
enum Items {
    Array(Vec<Value>),
    Object(Map<String, Value>),
}

impl Items {
    fn new(kind: ContainerKind, capacity: usize) -> Items {
        match kind {
            ContainerKind::Array => Items::Array(Vec::with_capacity(capacity)),
            ContainerKind::Object => Items::Object(Map::with_capacity(capacity)),
        }
    }

    /// Reads one array element, or one object property (name, then value).
    fn read_one(&mut self, reader: &mut Reader<'_>, depth: usize) -> Result<(), BinaryJsonError> {
        match self {
            Items::Array(elements) => elements.push(reader.value(depth)?),
            Items::Object(properties) => {
                let name = reader.property_name()?;
                properties.insert(name, reader.value(depth)?);
            }
        }
        Ok(())
    }

    fn into_value(self) -> Value {
        match self {
            Items::Array(elements) => Value::Array(elements),
            Items::Object(properties) => Value::Object(properties),
        }
    }
}

/// The IEEE 754 half-precision float with bits `bits`, widened.
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1F);
    let fraction = f64::from(bits & 0x03FF);
    let magnitude = match exponent {
        0 => fraction * 2f64.powi(-24),
        0x1F if fraction == 0.0 => f64::INFINITY,
        0x1F => f64::NAN,
        _ => (1024.0 + fraction) * 2f64.powi(exponent - 25),
    };
    sign * magnitude
}

/// What an unsupported marker stands for, for error messages.
fn unsupported_kind(marker: u8) -> &'static str {
    match marker {
        0x20..=0x3F => "system string",
        0x40..=0x67 => "user-dictionary string",
        0x71..=0x74 => "base64 string",
        0x75..=0x77 => "GUID string",
        0x78..=0x7F => "packed string",
        0xC3..=0xC6 => "reference string",
        0xD3 => "GUID",
        0xDD..=0xDF => "binary",
        0xF0..=0xF3 => "uniform number array",
        _ => "unassigned",
    }
}
