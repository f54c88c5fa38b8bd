//! The JSON luoctl prints: one object per line, each starting with the schema version.
//!
//! Objects are built by hand, in a fixed field order, because simple parsers (`grep`, `cut`,
//! a shell `case`) read these lines too: a field's place never changes within a version, and
//! a new field is only ever appended.

use std::fmt::{self, Write as _};

/// The version of every object's layout, its first field `"v"`. It changes only when a field
/// is removed, renamed or changes meaning; appending a field keeps it.
pub const SCHEMA_VERSION: u32 = 1;

/// One JSON object under construction: `{"v":1` followed by the fields given, in order.
#[derive(Debug)]
pub struct Object {
    text: String,
}

impl Object {
    /// An object holding only the schema version.
    pub fn new() -> Self {
        Object {
            text: format!("{{\"v\":{SCHEMA_VERSION}"),
        }
    }

    /// Appends `"key":"value"`, `value` escaped.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        escape_into(&mut self.text, value);
        self
    }

    /// Appends `"key":value` for a number.
    pub fn num(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.key(key);
        // Writing to a String cannot fail.
        let _ = write!(self.text, "{value}");
        self
    }

    /// Appends `"key":"value"`, or `"key":null` for `None`.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    /// Appends `"key":null`.
    pub fn null(mut self, key: &str) -> Self {
        self.key(key);
        self.text.push_str("null");
        self
    }

    /// Appends `"key":value` for a number that may be unknown, or nothing at all: the seam
    /// for fields a reader must not count on.
    pub fn opt_num(self, key: &str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(value) => self.num(key, value),
            None => self,
        }
    }

    fn key(&mut self, key: &str) {
        self.text.push(',');
        escape_into(&mut self.text, key);
        self.text.push(':');
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("}")
    }
}

/// Writes `text` as a JSON string: quoted, with quotes, backslashes and control characters
/// escaped (paths and error messages may hold any of them).
fn escape_into(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_first_and_fields_keep_their_order() {
        let object = Object::new()
            .str("state", "normal")
            .num("seq", 3)
            .null("prev");
        assert_eq!(
            object.to_string(),
            r#"{"v":1,"state":"normal","seq":3,"prev":null}"#
        );
    }

    #[test]
    fn strings_are_escaped() {
        let object = Object::new().str("error", "a \"b\"\\\n\u{1}");
        assert_eq!(object.to_string(), r#"{"v":1,"error":"a \"b\"\\\n\u0001"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&object.to_string()).unwrap();
        assert_eq!(parsed["error"], "a \"b\"\\\n\u{1}");
    }

    #[test]
    fn an_unknown_optional_number_is_left_out() {
        let object = Object::new().opt_num("transitions", None::<u64>);
        assert_eq!(object.to_string(), r#"{"v":1}"#);
        let object = Object::new().opt_num("transitions", Some(7u64));
        assert_eq!(object.to_string(), r#"{"v":1,"transitions":7}"#);
    }
}
