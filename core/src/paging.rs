//! Cursor pagination shared by every list: a page size within bounds, and a page cut from
//! one row more than asked for, so the last page is known without counting.

use crate::{Error, Result};

/// The largest page any list serves.
pub const MAX_LIMIT: u64 = 100;

/// The page size asked for, `default` when none: 1 to [`MAX_LIMIT`], or 422.
pub fn limit(asked: Option<u64>, default: u64) -> Result<u64> {
    match asked.unwrap_or(default) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        _ => Err(Error::invalid("invalid_limit", format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

/// Cuts `rows`, read with `limit + 1`, down to the page, and returns the cursor of the next
/// page (made from the page's last row) when there is one.
pub fn cut<T>(rows: &mut Vec<T>, limit: u64, cursor_of: impl FnOnce(&T) -> String) -> Option<String> {
    if rows.len() as u64 <= limit {
        return None;
    }
    rows.truncate(limit as usize);
    rows.last().map(cursor_of)
}

/// The error for a cursor this server did not give out (400, like any malformed parameter).
pub fn bad_cursor() -> Error {
    Error::bad_request("invalid_cursor", "the cursor is not one this server gave out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_and_pages_know_when_they_are_last() {
        assert_eq!(limit(None, 20).unwrap(), 20);
        assert!(limit(Some(0), 20).is_err() && limit(Some(101), 20).is_err());
        let mut rows = vec![1, 2, 3];
        assert_eq!(cut(&mut rows, 2, |n| n.to_string()), Some("2".to_owned()));
        assert_eq!(rows, [1, 2]);
        assert_eq!(cut(&mut rows, 2, |n| n.to_string()), None);
    }
}
