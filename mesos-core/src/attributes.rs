//! Agent attributes (`--attributes=rack:r1;level:0.8;ports:[6-7];gpu:{0,1}`).
//!
//! Attributes describe a machine rather than something to allocate: they are offered alongside
//! resources and read by placement constraints. A value is typed the way Mesos' value parser
//! types it: `[..]` is ranges, `{..}` a set, a number a scalar, anything else text.
//! (Mesos itself aborts on set-valued attributes; we keep them as sets.)
//!
//! ```
//! use mesos_core::attributes::{Attributes, AttributeValue};
//! let a = Attributes::parse("rack:r1;level:0.8;ports:[6-7];gpu:{0,1}").unwrap();
//! assert_eq!(a.get("rack"), Some(&AttributeValue::Text("r1".into())));
//! assert_eq!(a.get("level"), Some(&AttributeValue::Scalar(0.8)));
//! assert_eq!(a.to_string(), "rack:r1;level:0.8;ports:[6-7];gpu:{0, 1}");
//! ```

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value as Json};

use crate::resources::{Range, Ranges, Set};

/// Why an attributes string could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttributesError {
    /// A token has no `:`.
    #[error("expected `name:value` but got `{token}`")]
    NotNameValue {
        /// The token as written.
        token: String,
    },
    /// The name is empty.
    #[error("empty attribute name in `{token}`")]
    EmptyName {
        /// The token as written.
        token: String,
    },
    /// The value is empty.
    #[error("empty value for attribute `{name}`")]
    EmptyValue {
        /// The attribute name.
        name: String,
    },
    /// A ranges value is malformed.
    #[error("invalid ranges `{value}` for attribute `{name}`: {reason}")]
    InvalidRanges {
        /// The attribute name.
        name: String,
        /// The value as written.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A set value is malformed.
    #[error("invalid set `{value}` for attribute `{name}`: missing closing `}}`")]
    InvalidSet {
        /// The attribute name.
        name: String,
        /// The value as written.
        value: String,
    },
    /// The JSON form could not be read.
    #[error("invalid attributes JSON: {0}")]
    Json(String),
}

/// One attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    /// A number (`level:0.8`).
    Scalar(f64),
    /// Ranges (`ports:[6-7]`).
    Ranges(Ranges),
    /// A set (`gpu:{0,1}`).
    Set(Set),
    /// Text (`rack:r1`).
    Text(String),
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Scalar(v) => write!(f, "{v}"),
            AttributeValue::Ranges(r) => r.fmt(f),
            AttributeValue::Set(s) => s.fmt(f),
            AttributeValue::Text(t) => f.write_str(t),
        }
    }
}

/// One named attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// The name.
    pub name: String,
    /// The typed value.
    pub value: AttributeValue,
}

/// An agent's attributes in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Vec<Attribute>);

impl Attributes {
    /// No attributes.
    pub const fn new() -> Self {
        Attributes(Vec::new())
    }

    /// Parses `name:value;name:value`; a value may itself contain `:` (only the first splits).
    pub fn parse(text: &str) -> Result<Attributes, AttributesError> {
        let mut out = Vec::new();
        for token in text.split([';', '\n']).filter(|t| !t.trim().is_empty()) {
            let Some((name, value)) = token.split_once(':') else {
                return Err(AttributesError::NotNameValue {
                    token: token.trim().to_string(),
                });
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                return Err(AttributesError::EmptyName {
                    token: token.trim().to_string(),
                });
            }
            if value.is_empty() {
                return Err(AttributesError::EmptyValue {
                    name: name.to_string(),
                });
            }
            out.push(Attribute {
                name: name.to_string(),
                value: parse_value(name, value)?,
            });
        }
        Ok(Attributes(out))
    }

    /// The first attribute named `name`.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// Adds an attribute.
    pub fn push(&mut self, name: impl Into<String>, value: AttributeValue) {
        self.0.push(Attribute {
            name: name.into(),
            value,
        });
    }

    /// The attributes in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Attribute> {
        self.0.iter()
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The v1 JSON array: `[{"name":"rack","type":"TEXT","text":{"value":"r1"}}, ...]`.
    pub fn to_json(&self) -> Json {
        Json::Array(self.0.iter().map(attribute_to_json).collect())
    }

    /// The `/master/state` form: an object of name to value (numbers as numbers, the rest as text).
    pub fn to_state_json(&self) -> Json {
        let mut m = serde_json::Map::new();
        for a in &self.0 {
            let v = match &a.value {
                AttributeValue::Scalar(s) => json!(s),
                other => json!(other.to_string()),
            };
            m.insert(a.name.clone(), v);
        }
        Json::Object(m)
    }
}

fn parse_value(name: &str, value: &str) -> Result<AttributeValue, AttributesError> {
    if value.starts_with('[') {
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let err = |reason: String| AttributesError::InvalidRanges {
            name: name.to_string(),
            value: value.to_string(),
            reason,
        };
        if !compact.ends_with(']') {
            return Err(err("missing closing `]`".into()));
        }
        let tokens: Vec<&str> = compact
            .split(['[', ']', '-', ','])
            .filter(|t| !t.is_empty())
            .collect();
        if tokens.len() % 2 != 0 {
            return Err(err("expected pairs `begin-end`".into()));
        }
        let mut ranges = Vec::new();
        for pair in tokens.chunks_exact(2) {
            let num = |t: &str| {
                t.parse::<u64>()
                    .map_err(|_| err(format!("`{t}` is not a non-negative integer")))
            };
            let (b, e) = (num(pair[0])?, num(pair[1])?);
            if b > e {
                return Err(err(format!("range {b}-{e} is inverted")));
            }
            ranges.push(Range::new(b, e));
        }
        return Ok(AttributeValue::Ranges(Ranges::new(ranges)));
    }
    if value.starts_with('{') {
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        if !compact.ends_with('}') {
            return Err(AttributesError::InvalidSet {
                name: name.to_string(),
                value: value.to_string(),
            });
        }
        return Ok(AttributeValue::Set(Set::new(
            compact.split(['{', '}', ',']).filter(|t| !t.is_empty()),
        )));
    }
    let numeric = value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match value.parse::<f64>() {
        Ok(v) if numeric && v.is_finite() => Ok(AttributeValue::Scalar(v)),
        _ => Ok(AttributeValue::Text(value.to_string())),
    }
}

fn attribute_to_json(a: &Attribute) -> Json {
    match &a.value {
        AttributeValue::Scalar(v) => {
            json!({"name": a.name, "type": "SCALAR", "scalar": {"value": v}})
        }
        AttributeValue::Ranges(r) => {
            let range: Vec<Json> = r
                .iter()
                .map(|x| json!({"begin": x.begin, "end": x.end}))
                .collect();
            json!({"name": a.name, "type": "RANGES", "ranges": {"range": range}})
        }
        AttributeValue::Set(s) => {
            json!({"name": a.name, "type": "SET", "set": {"item": s.items()}})
        }
        AttributeValue::Text(t) => json!({"name": a.name, "type": "TEXT", "text": {"value": t}}),
    }
}

fn attribute_from_json(v: &Json) -> Result<Attribute, AttributesError> {
    let err = |what: &str| AttributesError::Json(format!("{what} in {v}"));
    let name = v
        .get("name")
        .and_then(Json::as_str)
        .ok_or_else(|| err("missing `name`"))?;
    if name.is_empty() {
        return Err(err("empty `name`"));
    }
    let kind = v
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| err("missing `type`"))?;
    let value = match kind {
        "SCALAR" => AttributeValue::Scalar(
            v.pointer("/scalar/value")
                .and_then(Json::as_f64)
                .ok_or_else(|| err("missing `scalar.value`"))?,
        ),
        "TEXT" => AttributeValue::Text(
            v.pointer("/text/value")
                .and_then(Json::as_str)
                .ok_or_else(|| err("missing `text.value`"))?
                .to_string(),
        ),
        "SET" => {
            let items = v
                .pointer("/set/item")
                .and_then(Json::as_array)
                .ok_or_else(|| err("missing `set.item`"))?;
            AttributeValue::Set(Set::new(items.iter().filter_map(Json::as_str)))
        }
        "RANGES" => {
            let list = v
                .pointer("/ranges/range")
                .and_then(Json::as_array)
                .ok_or_else(|| err("missing `ranges.range`"))?;
            let mut ranges = Vec::new();
            for r in list {
                let b = r
                    .get("begin")
                    .and_then(Json::as_u64)
                    .ok_or_else(|| err("bad range `begin`"))?;
                let e = r
                    .get("end")
                    .and_then(Json::as_u64)
                    .ok_or_else(|| err("bad range `end`"))?;
                if b > e {
                    return Err(err("inverted range"));
                }
                ranges.push(Range::new(b, e));
            }
            AttributeValue::Ranges(Ranges::new(ranges))
        }
        other => return Err(err(&format!("unknown type `{other}`"))),
    };
    Ok(Attribute {
        name: name.to_string(),
        value,
    })
}

/// The text form, attributes joined by `;`.
impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{}:{}", a.name, a.value)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Attributes {
    type Err = AttributesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Attributes::parse(s)
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Vec::<Json>::deserialize(deserializer)?;
        list.iter()
            .map(attribute_from_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Attributes)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_values_like_mesos() {
        let a = Attributes::parse("rack:r1;level:0.8;ports:[6-7];gpu:{0,1};host:a:b").unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(
            a.get("ports"),
            Some(&AttributeValue::Ranges(Ranges::single(6, 7)))
        );
        assert_eq!(
            a.get("gpu"),
            Some(&AttributeValue::Set(Set::new(["0", "1"])))
        );
        assert_eq!(a.get("host"), Some(&AttributeValue::Text("a:b".into())));
        assert_eq!(a.get("nope"), None);
    }

    #[test]
    fn words_that_rust_reads_as_floats_stay_text() {
        let a = Attributes::parse("kind:inf;other:NaN;v:1e3").unwrap();
        assert_eq!(a.get("kind"), Some(&AttributeValue::Text("inf".into())));
        assert_eq!(a.get("other"), Some(&AttributeValue::Text("NaN".into())));
        assert_eq!(a.get("v"), Some(&AttributeValue::Scalar(1000.0)));
    }

    #[test]
    fn errors_name_the_fragment() {
        assert_eq!(
            Attributes::parse("rack").unwrap_err().to_string(),
            "expected `name:value` but got `rack`"
        );
        assert!(Attributes::parse("p:[5-3]")
            .unwrap_err()
            .to_string()
            .contains("inverted"));
        assert!(Attributes::parse(":x")
            .unwrap_err()
            .to_string()
            .contains("empty attribute name"));
        assert!(Attributes::parse("x:")
            .unwrap_err()
            .to_string()
            .contains("empty value"));
    }

    #[test]
    fn json_round_trip() {
        let a = Attributes::parse("rack:r1;level:0.8;ports:[6-7];gpu:{0,1}").unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert!(
            json.contains(r#"{"name":"rack","text":{"value":"r1"},"type":"TEXT"}"#),
            "{json}"
        );
        let back: Attributes = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(
            a.to_state_json(),
            json!({"rack":"r1","level":0.8,"ports":"[6-7]","gpu":"{0, 1}"})
        );
    }
}
