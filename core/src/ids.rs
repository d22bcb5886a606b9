//! Public identifiers.
//!
//! Every row id is a UUIDv7 rendered as lowercase hex text: unguessable enough to appear in URLs,
//! and ordered by creation time, so "newest first" is simply "largest id first" on both databases.

/// A fresh, time-ordered id for a new row.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Whether `s` has the shape of an id made by [`new_id`]; lets callers turn junk into a 404
/// before it reaches the database or a file path.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_increase() {
        let a = new_id();
        let b = new_id();
        assert!(is_valid_id(&a), "{a}");
        assert!(a < b, "{a} !< {b}");
    }

    #[test]
    fn junk_is_not_an_id() {
        assert!(!is_valid_id("../etc/passwd"));
        assert!(!is_valid_id("0190F0E0A0B0C0D0E0F0A0B0C0D0E0F0"));
        assert!(!is_valid_id(""));
    }
}
