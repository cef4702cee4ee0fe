//! Applying operations to a document.
//!
//! [`apply`] works on a copy and swaps it in only when every operation has
//! succeeded, so a failed request leaves the document exactly as it was.

use serde_json::{Map, Number, Value};

use crate::pointer::{Pointer, excerpt};
use crate::request::check_operation_count;
use crate::{PatchError, PatchOperation};

/// Applies `operations` to `document`, in order, all or nothing.
///
/// ```
/// use serde_json::json;
/// use tributary_patch::{apply, PatchOperation};
///
/// let mut document = json!({"id": "1", "tags": ["a"], "stock": 5});
/// apply(&mut document, &[
///     PatchOperation::Add { path: "/tags/-".into(), value: json!("b") },
///     PatchOperation::Increment { path: "/stock".into(), value: (-2).into() },
/// ])?;
/// assert_eq!(document, json!({"id": "1", "tags": ["a", "b"], "stock": 3}));
///
/// // A failing operation undoes the ones before it.
/// let error = apply(&mut document, &[
///     PatchOperation::Set { path: "/color".into(), value: json!("red") },
///     PatchOperation::Remove { path: "/missing".into() },
/// ]).unwrap_err();
/// assert_eq!(error.to_string(), "For Operation(1): Node(/missing) to be removed is absent.");
/// assert_eq!(document, json!({"id": "1", "tags": ["a", "b"], "stock": 3}));
/// # Ok::<(), tributary_patch::PatchError>(())
/// ```
///
/// # Errors
///
/// The first operation that cannot apply gives a [`PatchError`] naming its
/// position and path; so does a list that is empty or longer than
/// [`crate::MAX_OPERATIONS`]. `document` is then unchanged.
pub fn apply(document: &mut Value, operations: &[PatchOperation]) -> Result<(), PatchError> {
    check_operation_count(operations.len())?;
    let mut patched = document.clone();
    for (index, operation) in operations.iter().enumerate() {
        apply_one(&mut patched, index, operation)?;
    }
    *document = patched;
    Ok(())
}

/// Where an operation acts: enough to carry out and to report on.
struct Target<'a> {
    /// The operation's position in the request.
    index: usize,
    /// The operation's name, for messages.
    operation: &'static str,
    /// The path as sent, for messages.
    path: &'a str,
    /// The parsed path.
    pointer: &'a Pointer,
}

/// The object or array that holds a target.
enum Parent<'d> {
    Object(&'d mut Map<String, Value>),
    Array(&'d mut Vec<Value>),
}

/// What `set` and `replace` do with a missing object member.
enum WhenAbsent {
    /// `set`: create it.
    Create,
    /// `replace`: refuse.
    Fail,
}

/// Where in an array a path segment points.
enum ArrayPosition {
    /// An index, which may be past the end.
    Index(usize),
    /// `-`: just past the last element.
    End,
}

fn apply_one(
    document: &mut Value,
    index: usize,
    operation: &PatchOperation,
) -> Result<(), PatchError> {
    let pointer = Pointer::parse(index, operation.path())?;
    let target = Target {
        index,
        operation: operation.name(),
        path: operation.path(),
        pointer: &pointer,
    };
    match operation {
        PatchOperation::Add { value, .. } => add(document, &target, value.clone()),
        PatchOperation::Set { value, .. } => {
            overwrite(document, &target, value.clone(), WhenAbsent::Create)
        }
        PatchOperation::Replace { value, .. } => {
            overwrite(document, &target, value.clone(), WhenAbsent::Fail)
        }
        PatchOperation::Remove { .. } => remove(document, &target, "removed").map(drop),
        PatchOperation::Increment { value, .. } => increment(document, &target, value),
        PatchOperation::Move { from, .. } => {
            let source_pointer = Pointer::parse(index, from)?;
            let source = Target {
                pointer: &source_pointer,
                path: from,
                ..target
            };
            if pointer.is_strictly_inside(&source_pointer) {
                return Err(PatchError::MoveIntoChild {
                    index,
                    from: excerpt(from),
                    path: excerpt(target.path),
                });
            }
            if source_pointer.segments == pointer.segments {
                // Moving a value onto itself leaves the document as it was.
                return match lookup(document, &source_pointer) {
                    Some(_) => Ok(()),
                    None => Err(absent(&source, "moved")),
                };
            }
            let moved = remove(document, &source, "moved")?;
            add(document, &target, moved)
        }
    }
}

/// `add`: set an object member, or insert into an array (`-` appends).
fn add(document: &mut Value, target: &Target, value: Value) -> Result<(), PatchError> {
    let (parent, last) = parent_of(document, target)?;
    match parent {
        Parent::Object(members) => {
            members.insert(last.to_owned(), value);
        }
        Parent::Array(elements) => {
            let at = match array_position(target, last)? {
                ArrayPosition::End => elements.len(),
                ArrayPosition::Index(at) if at <= elements.len() => at,
                ArrayPosition::Index(at) => {
                    return Err(out_of_bounds(target, at, elements.len()));
                }
            };
            elements.insert(at, value);
        }
    }
    Ok(())
}

/// `set` ([`WhenAbsent::Create`]) and `replace` ([`WhenAbsent::Fail`]):
/// overwrite an object member or an existing array element.
fn overwrite(
    document: &mut Value,
    target: &Target,
    value: Value,
    when_absent: WhenAbsent,
) -> Result<(), PatchError> {
    let (parent, last) = parent_of(document, target)?;
    match parent {
        Parent::Object(members) => {
            if matches!(when_absent, WhenAbsent::Fail) && !members.contains_key(last) {
                return Err(absent(target, "replaced"));
            }
            members.insert(last.to_owned(), value);
        }
        Parent::Array(elements) => {
            let at = existing_index(target, last, elements.len())?;
            elements[at] = value;
        }
    }
    Ok(())
}

/// Removes and returns the target, which must exist.
fn remove(
    document: &mut Value,
    target: &Target,
    action: &'static str,
) -> Result<Value, PatchError> {
    let (parent, last) = parent_of(document, target)?;
    match parent {
        Parent::Object(members) => members
            .shift_remove(last)
            .ok_or_else(|| absent(target, action)),
        Parent::Array(elements) => {
            let at = existing_index(target, last, elements.len())?;
            Ok(elements.remove(at))
        }
    }
}

/// `incr`: add to an existing number, or create a missing object member.
fn increment(document: &mut Value, target: &Target, delta: &Number) -> Result<(), PatchError> {
    let (parent, last) = parent_of(document, target)?;
    let current = match parent {
        Parent::Object(members) => match members.get_mut(last) {
            Some(current) => current,
            None => {
                members.insert(last.to_owned(), Value::Number(delta.clone()));
                return Ok(());
            }
        },
        Parent::Array(elements) => {
            let at = existing_index(target, last, elements.len())?;
            &mut elements[at]
        }
    };
    let Value::Number(number) = current else {
        return Err(PatchError::NotANumber {
            index: target.index,
            path: excerpt(target.path),
        });
    };
    *number = add_numbers(number, delta).ok_or_else(|| PatchError::NumberOutOfRange {
        index: target.index,
        path: excerpt(target.path),
    })?;
    Ok(())
}

/// The sum of two JSON numbers: an integer if both are integers (and the
/// sum fits in `i64` or `u64`), else a float; `None` if it does not fit or
/// is not finite.
fn add_numbers(current: &Number, delta: &Number) -> Option<Number> {
    let as_integer = |number: &Number| {
        number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from))
    };
    if let (Some(current), Some(delta)) = (as_integer(current), as_integer(delta)) {
        let sum = current + delta;
        return i64::try_from(sum)
            .map(Number::from)
            .or_else(|_| u64::try_from(sum).map(Number::from))
            .ok();
    }
    Number::from_f64(current.as_f64()? + delta.as_f64()?)
}

/// The object or array holding the target, and the target's last segment.
fn parent_of<'d, 'p>(
    document: &'d mut Value,
    target: &Target<'p>,
) -> Result<(Parent<'d>, &'p str), PatchError> {
    let Some((last, ancestors)) = target.pointer.segments.split_last() else {
        return Err(no_parent(target, 0));
    };
    let mut node = document;
    for (depth, segment) in ancestors.iter().enumerate() {
        let child = match node {
            Value::Object(members) => members.get_mut(segment),
            Value::Array(elements) => match parse_index(segment) {
                Some(at) => elements.get_mut(at),
                None => None,
            },
            _ => None,
        };
        node = child.ok_or_else(|| no_parent(target, depth))?;
    }
    match node {
        Value::Object(members) => Ok((Parent::Object(members), last)),
        Value::Array(elements) => Ok((Parent::Array(elements), last)),
        _ => Err(no_parent(target, ancestors.len())),
    }
}

/// The value at `pointer`, if there is one.
fn lookup<'d>(document: &'d Value, pointer: &Pointer) -> Option<&'d Value> {
    pointer
        .segments
        .iter()
        .try_fold(document, |node, segment| match node {
            Value::Object(members) => members.get(segment),
            Value::Array(elements) => elements.get(parse_index(segment)?),
            _ => None,
        })
}

/// The position a segment names in an array.
fn array_position(target: &Target, segment: &str) -> Result<ArrayPosition, PatchError> {
    if segment == "-" {
        return Ok(ArrayPosition::End);
    }
    match parse_index(segment) {
        Some(at) => Ok(ArrayPosition::Index(at)),
        None => Err(PatchError::InvalidArrayIndex {
            index: target.index,
            path: excerpt(target.path),
            token: excerpt(segment),
            reason: if !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_digit()) {
                "it has a leading zero or is too large"
            } else {
                "expected a non-negative integer, or '-' to append"
            },
        }),
    }
}

/// The index of an element that must exist in an array of `len` elements.
fn existing_index(target: &Target, segment: &str, len: usize) -> Result<usize, PatchError> {
    match array_position(target, segment)? {
        ArrayPosition::Index(at) if at < len => Ok(at),
        ArrayPosition::Index(at) => Err(out_of_bounds(target, at, len)),
        ArrayPosition::End => Err(PatchError::InvalidArrayIndex {
            index: target.index,
            path: excerpt(target.path),
            token: "-".to_owned(),
            reason: "'-' (past the end) only works with add and move",
        }),
    }
}

/// A decimal array index without leading zeros (RFC 6901), or `None`.
fn parse_index(segment: &str) -> Option<usize> {
    let is_canonical = match segment.as_bytes() {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if is_canonical {
        segment.parse().ok()
    } else {
        None
    }
}

fn no_parent(target: &Target, n_existing_segments: usize) -> PatchError {
    PatchError::NoParent {
        index: target.index,
        operation: target.operation,
        path: excerpt(target.path),
        existing: excerpt(&target.pointer.prefix(n_existing_segments)),
    }
}

fn absent(target: &Target, action: &'static str) -> PatchError {
    PatchError::TargetAbsent {
        index: target.index,
        path: excerpt(target.path),
        action,
    }
}

fn out_of_bounds(target: &Target, array_index: usize, len: usize) -> PatchError {
    PatchError::IndexOutOfBounds {
        index: target.index,
        path: excerpt(target.path),
        array_index,
        len,
    }
}
