//! Marathon's 422 body: every violation of an app, grouped by JSON path.
//!
//! Users fix a rejected app field by field, so returning only the first problem makes them post
//! it again and again; Marathon lists them all and so do we:
//! `{"message":"Object is not valid","details":[{"path":"/cpus","errors":["..."]}]}`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

/// One offending JSON path and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON path in Marathon's notation (`/container/portMappings(0)/protocol`).
    pub path: String,
    /// The messages for that path, in the order found.
    pub errors: Vec<String>,
}

/// An app (or app update) that is not valid: every violation found.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The violations, one entry per path, in the order first found.
    pub details: Vec<Violation>,
}

impl ValidationError {
    /// Records `message` at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let message = message.into();
        match self.details.iter_mut().find(|v| v.path == path) {
            Some(v) => {
                if !v.errors.contains(&message) {
                    v.errors.push(message);
                }
            }
            None => self.details.push(Violation {
                path,
                errors: vec![message],
            }),
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    /// The messages recorded at `path`.
    pub fn errors_at(&self, path: &str) -> &[String] {
        self.details
            .iter()
            .find(|v| v.path == path)
            .map_or(&[], |v| v.errors.as_slice())
    }

    /// The paths with violations, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.details.iter().map(|v| v.path.as_str()).collect()
    }

    /// The HTTP 422 body Marathon sends.
    pub fn to_json(&self) -> Json {
        json!({"message": "Object is not valid", "details": self.details})
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Object is not valid")?;
        for (i, v) in self.details.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{}: {}", v.path, v.errors.join(", "))?;
        }
        Ok(())
    }
}

/// Typed reads from a JSON object that record a violation (and give `None`) on a wrong type, so
/// one pass over a request finds every problem. Absent and `null` read as `None` silently.
pub(crate) struct Reader<'a, 'e> {
    obj: &'a serde_json::Map<String, Json>,
    base: String,
    errors: &'e mut ValidationError,
}

impl<'a, 'e> Reader<'a, 'e> {
    /// Reads `json` as an object at `base` (`""` for the top level); a non-object records
    /// `error.expected.jsobject` and reads as empty.
    pub(crate) fn new(json: &'a Json, base: &str, errors: &'e mut ValidationError) -> Self {
        static EMPTY: std::sync::OnceLock<serde_json::Map<String, Json>> =
            std::sync::OnceLock::new();
        let obj = match json.as_object() {
            Some(o) => o,
            None => {
                errors.push(
                    if base.is_empty() { "/" } else { base },
                    "error.expected.jsobject",
                );
                EMPTY.get_or_init(serde_json::Map::new)
            }
        };
        Reader {
            obj,
            base: base.to_string(),
            errors,
        }
    }

    /// The path of `key` under this object.
    pub(crate) fn path(&self, key: &str) -> String {
        format!("{}/{key}", self.base)
    }

    /// The errors collected so far.
    pub(crate) fn errors(&mut self) -> &mut ValidationError {
        self.errors
    }

    /// True when `key` is present and not null.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// The raw value of `key` (null reads as absent).
    pub(crate) fn raw(&self, key: &str) -> Option<&'a Json> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn wrong(&mut self, key: &str, what: &str) {
        let p = self.path(key);
        self.errors.push(p, what);
    }

    /// A number.
    pub(crate) fn f64(&mut self, key: &str) -> Option<f64> {
        let v = self.raw(key)?;
        match v.as_f64() {
            Some(n) => Some(n),
            None => {
                self.wrong(key, "error.expected.jsnumber");
                None
            }
        }
    }

    /// An integral number (`0.1` is refused with `error.expected.int`).
    pub(crate) fn i64(&mut self, key: &str) -> Option<i64> {
        let v = self.raw(key)?;
        if let Some(n) = v.as_i64() {
            return Some(n);
        }
        match v.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            Some(_) => {
                self.wrong(key, "error.expected.int");
                None
            }
            None => {
                self.wrong(key, "error.expected.jsnumber");
                None
            }
        }
    }

    /// A string.
    pub(crate) fn str(&mut self, key: &str) -> Option<&'a str> {
        let v = self.raw(key)?;
        match v.as_str() {
            Some(s) => Some(s),
            None => {
                self.wrong(key, "error.expected.jsstring");
                None
            }
        }
    }

    /// A boolean.
    pub(crate) fn bool(&mut self, key: &str) -> Option<bool> {
        let v = self.raw(key)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong(key, "error.expected.jsboolean");
                None
            }
        }
    }

    /// An array.
    pub(crate) fn array(&mut self, key: &str) -> Option<&'a Vec<Json>> {
        let v = self.raw(key)?;
        match v.as_array() {
            Some(a) => Some(a),
            None => {
                self.wrong(key, "error.expected.jsarray");
                None
            }
        }
    }

    /// An object (returned as the raw value, to be read with a nested [`Reader`]).
    pub(crate) fn object(&mut self, key: &str) -> Option<&'a Json> {
        let v = self.raw(key)?;
        if v.is_object() {
            Some(v)
        } else {
            self.wrong(key, "error.expected.jsobject");
            None
        }
    }

    /// An array of strings; wrong elements are recorded at `key(i)`.
    pub(crate) fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        let a = self.array(key)?;
        let mut out = Vec::with_capacity(a.len());
        for (i, v) in a.iter().enumerate() {
            match v.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    let p = format!("{}({i})", self.path(key));
                    self.errors.push(p, "error.expected.jsstring");
                }
            }
        }
        Some(out)
    }

    /// An object of string values; wrong values are recorded at `key/name`.
    pub(crate) fn string_map(
        &mut self,
        key: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let o = self.object(key)?.as_object()?;
        let mut out = std::collections::BTreeMap::new();
        for (k, v) in o {
            match v.as_str() {
                Some(s) => {
                    out.insert(k.clone(), s.to_string());
                }
                None => {
                    let p = format!("{}/{k}", self.path(key));
                    self.errors.push(p, "error.expected.jsstring");
                }
            }
        }
        Some(out)
    }
}
