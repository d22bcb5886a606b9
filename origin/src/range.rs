//! HTTP `Range: bytes=…` for segments (RFC 9110 §14). One range per request is what players send;
//! a multi-range request is answered with the whole object, which the RFC allows.

use std::ops::Range;

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable Range header: send everything with 200.
    Whole,
    /// Send these bytes with 206.
    Part(Range<u64>),
    /// Nothing of the object is in the range: 416.
    Unsatisfiable,
}

/// Interprets a Range header against an object of `size` bytes.
pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let range = match (start.trim(), end.trim()) {
        ("", "") => return RangeRequest::Whole,
        // The last `n` bytes.
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return RangeRequest::Whole,
        },
        (start, end) => {
            let Ok(start) = start.parse::<u64>() else { return RangeRequest::Whole };
            let end = match end {
                "" => size,
                end => match end.parse::<u64>() {
                    Ok(end) if end >= start => end.saturating_add(1).min(size),
                    _ => return RangeRequest::Whole,
                },
            };
            start..end
        }
    };
    if range.start >= size || range.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse(Some("bytes=0-99"), 1000), RangeRequest::Part(0..100));
        assert_eq!(parse(Some("bytes=900-"), 1000), RangeRequest::Part(900..1000));
        assert_eq!(parse(Some("bytes=-100"), 1000), RangeRequest::Part(900..1000));
        assert_eq!(parse(Some("bytes=990-5000"), 1000), RangeRequest::Part(990..1000));
        assert_eq!(parse(Some("bytes=-5000"), 1000), RangeRequest::Part(0..1000));
    }

    #[test]
    fn odd_headers() {
        assert_eq!(parse(None, 1000), RangeRequest::Whole);
        assert_eq!(parse(Some("items=0-1"), 1000), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=0-1,5-6"), 1000), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=5-1"), 1000), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=x-1"), 1000), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=1000-"), 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), RangeRequest::Unsatisfiable);
    }
}
