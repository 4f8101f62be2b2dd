//! Marathon placement constraints (`["hostname","UNIQUE"]`, `["rack","GROUP_BY","3"]`, ...).
//!
//! A constraint names a *field* of an agent (`hostname`, `@region`, `@zone` or an attribute), an
//! *operator* and an optional *value*. [`Constraint::is_satisfied`] decides whether one more
//! instance of an app may go to a candidate agent, given the agents of the app's instances that
//! count (`placed`). The semantics are Marathon's released ones (tags up to v1.10.26), including
//! the classic `GROUP_BY` algorithm, because that is what users ran.
//!
//! Beside the reference evaluation there are: [`ConstraintTracker`], the same answers from counts
//! per value for the placer's hot path; [`select_instances_to_kill`], scale-down that keeps
//! GROUP_BY groups even; and [`unsatisfiable`], which names a constraint that can never be met on
//! the known agents (more `hostname:UNIQUE` instances than hosts, a LIKE nobody matches).
//!
//! Validation follows Marathon >= 1.5 with one deliberate exception: an empty value (`""`) means
//! "no value", so the seed's `["hostname","UNIQUE",""]` is accepted and echoed as
//! `["hostname","UNIQUE"]` (Marathon >= 1.5 rejects it, which broke copied examples).
//!
//! ```
//! use mesos_core::constraints::{AgentView, Constraint};
//! let c = Constraint::from_json(&serde_json::json!(["hostname", "UNIQUE", ""])).unwrap();
//! assert_eq!(serde_json::to_value(&c).unwrap(), serde_json::json!(["hostname", "UNIQUE"]));
//! let placed = [AgentView::new("a")];
//! assert!(!c.is_satisfied(&AgentView::new("a"), &placed));
//! assert!(c.is_satisfied(&AgentView::new("b"), &placed));
//! ```

mod agent;
mod feasibility;
mod select;
mod tracker;

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

pub use agent::{format_scalar, render_attribute, AgentView};
pub use feasibility::{unsatisfiable, Unsatisfiable};
pub use select::select_instances_to_kill;
pub use tracker::ConstraintTracker;

/// Why a constraint was rejected. Messages are Marathon's (`SchedulingValidation.scala`), so the
/// daemon can put them in its 422 body unchanged; the variants carry the offending input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The JSON is not an array of 2 or 3 elements.
    #[error("Each constraint must have either 2 or 3 fields")]
    Arity {
        /// The JSON as given.
        json: String,
    },
    /// An element is not a string.
    #[error("Each constraint must have either 2 or 3 fields")]
    NotAString {
        /// The JSON as given.
        json: String,
    },
    /// The field is empty.
    #[error("illegal constraint specification")]
    EmptyField,
    /// The operator is not one Marathon knows.
    #[error(
        "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
    )]
    UnknownOperator {
        /// The operator as given.
        operator: String,
    },
    /// `UNIQUE` was given a non-empty value.
    #[error("UNIQUE does not accept a value")]
    UniqueWithValue {
        /// The value as given.
        value: String,
    },
    /// `GROUP_BY`'s value is not an integer.
    #[error("GROUP BY must define an integer value or else no value at all")]
    GroupByNotInteger {
        /// The value as given.
        value: String,
    },
    /// `MAX_PER` has no value or a non-integer one.
    #[error("MAX_PER requires an integer value")]
    MaxPerNotInteger {
        /// The value as given (`None` when absent).
        value: Option<String>,
    },
    /// `LIKE`/`UNLIKE` without a value.
    #[error("LIKE and UNLIKE require a non-empty, regular expression value")]
    RegexMissing,
    /// `LIKE`/`UNLIKE` with a value that does not compile.
    #[error("is not a valid regular expression")]
    RegexInvalid {
        /// The value as given.
        value: String,
    },
    /// `IS` with a value that is neither Mesos text nor a float.
    #[error("IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)")]
    IsUnsupportedValue {
        /// The value as given.
        value: String,
    },
}

/// What a constraint reads from an agent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `hostname` or `@hostname`.
    Hostname,
    /// `@region`: the agent's fault-domain region.
    Region,
    /// `@zone`: the agent's fault-domain zone.
    Zone,
    /// Any other name: the agent attribute of that name.
    Attribute(String),
}

impl Field {
    /// Reads a field name as Marathon does.
    pub fn parse(name: &str) -> Field {
        match name {
            "hostname" | "@hostname" => Field::Hostname,
            "@region" => Field::Region,
            "@zone" => Field::Zone,
            other => Field::Attribute(other.to_string()),
        }
    }
}

/// A constraint operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// At most one instance per value.
    Unique,
    /// All instances on one value (the given one, or the first instance's).
    Cluster,
    /// Spread evenly over the values (classic algorithm).
    GroupBy,
    /// The value fully matches a regular expression.
    Like,
    /// The value does not fully match a regular expression (or is missing).
    Unlike,
    /// At most N instances per value.
    MaxPer,
    /// The value equals the given text or number.
    Is,
}

impl Operator {
    /// Marathon's name (`GROUP_BY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Unique => "UNIQUE",
            Operator::Cluster => "CLUSTER",
            Operator::GroupBy => "GROUP_BY",
            Operator::Like => "LIKE",
            Operator::Unlike => "UNLIKE",
            Operator::MaxPer => "MAX_PER",
            Operator::Is => "IS",
        }
    }

    /// Reads an operator, case-insensitively as Marathon >= 1.5 does.
    pub fn parse(name: &str) -> Option<Operator> {
        Some(match name.to_ascii_uppercase().as_str() {
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster,
            "GROUP_BY" => Operator::GroupBy,
            "LIKE" => Operator::Like,
            "UNLIKE" => Operator::Unlike,
            "MAX_PER" => Operator::MaxPer,
            "IS" => Operator::Is,
            _ => return None,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated constraint. Equality and hashing ignore the compiled regex.
#[derive(Clone, Debug)]
pub struct Constraint {
    field_name: String,
    field: Field,
    operator: Operator,
    value: Option<String>,
    /// The operator's parameter, parsed once: the GROUP_BY minimum or the MAX_PER maximum.
    number: i64,
    /// `IS`: the value as compared (a number re-rendered with three decimals).
    is_value: Option<String>,
    /// `LIKE`/`UNLIKE`: the value anchored at both ends.
    regex: Option<Regex>,
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        self.field_name == other.field_name
            && self.operator == other.operator
            && self.value == other.value
    }
}

impl Eq for Constraint {}

impl std::hash::Hash for Constraint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.field_name.hash(state);
        self.operator.hash(state);
        self.value.hash(state);
    }
}

fn is_number(value: &str) -> bool {
    // `[0-9]+(\.[0-9]+)?`
    let (int, frac) = match value.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

fn parse_int(value: &str) -> Option<i64> {
    // Java's `toInt` accepts an optional sign and decimal digits within i32.
    value.parse::<i32>().ok().map(i64::from)
}

impl Constraint {
    /// Builds and validates a constraint from its parts; an empty value means no value.
    pub fn new(field: &str, operator: &str, value: Option<&str>) -> Result<Self, ConstraintError> {
        if field.is_empty() {
            return Err(ConstraintError::EmptyField);
        }
        let op = Operator::parse(operator).ok_or_else(|| ConstraintError::UnknownOperator {
            operator: operator.to_string(),
        })?;
        let value = value.filter(|v| !v.is_empty());
        let mut c = Constraint {
            field_name: field.to_string(),
            field: Field::parse(field),
            operator: op,
            value: value.map(str::to_string),
            number: 0,
            is_value: None,
            regex: None,
        };
        match op {
            Operator::Unique => {
                if let Some(v) = value {
                    return Err(ConstraintError::UniqueWithValue {
                        value: v.to_string(),
                    });
                }
            }
            Operator::Cluster => {}
            Operator::GroupBy => {
                if let Some(v) = value {
                    c.number = parse_int(v).ok_or_else(|| ConstraintError::GroupByNotInteger {
                        value: v.to_string(),
                    })?;
                }
            }
            Operator::MaxPer => {
                let v = value.ok_or(ConstraintError::MaxPerNotInteger { value: None })?;
                c.number = parse_int(v).ok_or_else(|| ConstraintError::MaxPerNotInteger {
                    value: Some(v.to_string()),
                })?;
            }
            Operator::Like | Operator::Unlike => {
                let v = value.ok_or(ConstraintError::RegexMissing)?;
                // The expression must compile on its own: `a)|(b` would otherwise escape the
                // anchoring group below and match partially.
                let invalid = || ConstraintError::RegexInvalid {
                    value: v.to_string(),
                };
                Regex::new(v).map_err(|_| invalid())?;
                let re = Regex::new(&format!("^(?:{v})$")).map_err(|_| {
                    ConstraintError::RegexInvalid {
                        value: v.to_string(),
                    }
                })?;
                c.regex = Some(re);
            }
            Operator::Is => {
                let v = value.unwrap_or("");
                let ok = v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'.' | b'-'));
                if !ok {
                    return Err(ConstraintError::IsUnsupportedValue {
                        value: v.to_string(),
                    });
                }
                c.is_value = Some(match v.parse::<f64>() {
                    Ok(n) if is_number(v) => format_scalar(n),
                    _ => v.to_string(),
                });
            }
        }
        Ok(c)
    }

    /// Reads the JSON array form `["field","OPERATOR"]` or `["field","OPERATOR","value"]`.
    pub fn from_json(json: &Json) -> Result<Self, ConstraintError> {
        let items = match json.as_array() {
            Some(a) if a.len() == 2 || a.len() == 3 => a,
            _ => {
                return Err(ConstraintError::Arity {
                    json: json.to_string(),
                })
            }
        };
        let mut parts = Vec::with_capacity(3);
        for item in items {
            match item.as_str() {
                Some(s) => parts.push(s),
                None => {
                    return Err(ConstraintError::NotAString {
                        json: json.to_string(),
                    })
                }
            }
        }
        Constraint::new(parts[0], parts[1], parts.get(2).copied())
    }

    /// The JSON array form, with no value element when there is no value.
    pub fn to_json(&self) -> Json {
        let mut v = vec![
            Json::from(self.field_name.as_str()),
            Json::from(self.operator.as_str()),
        ];
        if let Some(value) = &self.value {
            v.push(Json::from(value.as_str()));
        }
        Json::Array(v)
    }

    /// The field name as given (`hostname`, `@zone`, `rack`).
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// The field.
    pub fn field(&self) -> &Field {
        &self.field
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The value, `None` when absent or empty.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// `GROUP_BY`'s minimum number of groups (0 without a value) or `MAX_PER`'s maximum.
    pub fn number(&self) -> i64 {
        self.number
    }

    /// Whether one more instance may go to `candidate`, given the agents of the instances of the
    /// same app that count (`placed`: placed and not lost, of the current version).
    pub fn is_satisfied(&self, candidate: &AgentView, placed: &[AgentView]) -> bool {
        let Some(v) = candidate.value(&self.field) else {
            // A missing field only satisfies UNLIKE.
            return self.operator == Operator::Unlike;
        };
        let values = || placed.iter().map(|p| p.value(&self.field));
        match self.operator {
            Operator::Unique => values().all(|p| p != Some(v)),
            Operator::Cluster => match &self.value {
                Some(c) => v == c,
                None => values().next().is_none_or(|first| first == Some(v)),
            },
            Operator::GroupBy => {
                let mut groups: Vec<(Option<&str>, u64)> = Vec::new();
                for p in values() {
                    match groups.iter_mut().find(|(g, _)| *g == p) {
                        Some((_, n)) => *n += 1,
                        None => groups.push((p, 1)),
                    }
                }
                group_by_allows(
                    self.number,
                    v,
                    groups.len(),
                    |value| {
                        groups
                            .iter()
                            .find(|(g, _)| *g == Some(value))
                            .map(|(_, n)| *n)
                    },
                    || groups.iter().map(|(_, n)| *n).min(),
                )
            }
            Operator::MaxPer => {
                let n = values().filter(|p| *p == Some(v)).count();
                i64::try_from(n).unwrap_or(i64::MAX) < self.number
            }
            Operator::Like => self.matches(v),
            Operator::Unlike => !self.matches(v),
            Operator::Is => self.is_value.as_deref() == Some(v),
        }
    }

    /// Whether `value` fully matches the LIKE/UNLIKE expression (false for other operators).
    pub fn matches(&self, value: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(value))
    }

    /// `IS`: the value compared against (numbers re-rendered with three decimals).
    pub(crate) fn is_value(&self) -> Option<&str> {
        self.is_value.as_deref()
    }
}

/// The classic GROUP_BY rule: a value not yet used is always allowed; a used one only when there
/// are at least `min` groups and it is (one of) the smallest.
pub(crate) fn group_by_allows(
    min: i64,
    v: &str,
    group_count: usize,
    count_of: impl FnOnce(&str) -> Option<u64>,
    smallest: impl FnOnce() -> Option<u64>,
) -> bool {
    let Some(n) = count_of(v) else {
        return true;
    };
    let min = usize::try_from(min.max(0)).unwrap_or(usize::MAX);
    group_count >= min && Some(n) == smallest()
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Serialize for Constraint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Constraint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        Constraint::from_json(&json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_for_is() {
        assert!(is_number("1"));
        assert!(is_number("1.25"));
        assert!(!is_number("1."));
        assert!(!is_number(".5"));
        assert!(!is_number("a1"));
        let c = Constraint::from_json(&json!(["level", "IS", "1.0"])).unwrap();
        assert_eq!(c.is_value(), Some("1"));
    }
}
