//! The text form `cpus:2;mem:1024;ports:[31000-32000];disks:{a,b};cpus(role1):2`.

use std::sync::Arc;

use super::{Name, Range, Ranges, Reservation, Resource, Resources, Scalar, Set, Value};

/// Why a resource string or JSON could not be read. Every variant names the offending fragment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    /// A `;`-separated token is not `name:value`.
    #[error("expected `name:value` but got `{token}`")]
    NotNameValue {
        /// The token as written.
        token: String,
    },
    /// The name part is empty.
    #[error("empty resource name in `{token}`")]
    EmptyName {
        /// The token as written.
        token: String,
    },
    /// The `(role)` part is malformed.
    #[error("malformed role in `{token}`: {reason}")]
    MalformedRole {
        /// The token as written.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A role name breaks Mesos' role rules.
    #[error("invalid role `{role}`: {reason}")]
    InvalidRole {
        /// The role as written.
        role: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A scalar is not a number.
    #[error("invalid scalar value `{value}` for `{name}`")]
    InvalidScalar {
        /// The resource name.
        name: String,
        /// The value as written.
        value: String,
    },
    /// A scalar is negative.
    #[error("negative scalar value `{value}` for `{name}`")]
    NegativeScalar {
        /// The resource name.
        name: String,
        /// The value as written.
        value: String,
    },
    /// A non-zero scalar rounds to zero at three decimals.
    #[error(
        "scalar value `{value}` for `{name}` is too small: the smallest non-zero amount is 0.001"
    )]
    ScalarTooSmall {
        /// The resource name.
        name: String,
        /// The value as written.
        value: String,
    },
    /// A scalar does not fit in the fixed-point range.
    #[error("scalar value `{value}` for `{name}` is too large")]
    ScalarTooLarge {
        /// The resource name.
        name: String,
        /// The value as written.
        value: String,
    },
    /// A ranges value is malformed.
    #[error("invalid ranges `{value}` for `{name}`: {reason}")]
    InvalidRanges {
        /// The resource name.
        name: String,
        /// The value as written.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A set value is malformed.
    #[error("invalid set `{value}` for `{name}`: {reason}")]
    InvalidSet {
        /// The resource name.
        name: String,
        /// The value as written.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The same name appears with two value types.
    #[error("resource `{name}` appears both as {first} and as {second}")]
    TypeConflict {
        /// The resource name.
        name: String,
        /// The first type seen.
        first: &'static str,
        /// The conflicting type.
        second: &'static str,
    },
    /// The JSON form could not be read.
    #[error("invalid resources JSON: {0}")]
    Json(String),
}

/// Parses the text form (or the v1 JSON array form when the text starts with `[`).
pub(super) fn parse(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
    if text.trim_start().starts_with('[') {
        return super::json::from_json_str(text, default_role);
    }
    validate_role(default_role)?;
    let mut out = Resources::new();
    if text.trim() == "{}" {
        // What an empty `Resources` prints as.
        return Ok(out);
    }
    for token in text.split(';').filter(|t| !t.trim().is_empty()) {
        let resource = parse_token(token, default_role)?;
        out.check_type(&resource)?;
        out.push(resource);
    }
    Ok(out)
}

fn parse_token(token: &str, default_role: &str) -> Result<Resource, ResourcesError> {
    let parts: Vec<&str> = split_top_level_colons(token)
        .filter(|p| !p.is_empty())
        .collect();
    let [name_part, value_part] = parts.as_slice() else {
        return Err(ResourcesError::NotNameValue {
            token: token.trim().to_string(),
        });
    };
    let (name, allocation, role) = parse_name(name_part, token)?;
    let value = parse_value(&name, value_part)?;
    let mut resource = Resource::new(Name::from(name.as_str()), value);
    let role = role.as_deref().unwrap_or(default_role);
    if role != "*" {
        resource.reservations.push(Reservation::static_to(role));
    }
    resource.allocation_role = allocation.map(Arc::from);
    Ok(resource)
}

/// Splits on `:` outside parentheses, so `cpus(allocated: r):1` has two parts.
fn split_top_level_colons(token: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0i32;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in token.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth <= 0 => {
                parts.push(&token[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&token[start..]);
    parts.into_iter()
}

/// Splits `name(allocated: r)(role)` into its parts.
fn parse_name(
    part: &str,
    token: &str,
) -> Result<(String, Option<String>, Option<String>), ResourcesError> {
    let malformed = |reason| ResourcesError::MalformedRole {
        token: token.trim().to_string(),
        reason,
    };
    let (name, mut rest) = match part.find('(') {
        Some(i) => (part[..i].trim(), part[i..].trim()),
        None => (part.trim(), ""),
    };
    if name.is_empty() {
        return Err(ResourcesError::EmptyName {
            token: token.trim().to_string(),
        });
    }
    if name.contains(')') {
        return Err(malformed("unbalanced `)`"));
    }
    let (mut allocation, mut role) = (None, None);
    while !rest.is_empty() {
        let Some(inner_end) = rest.find(')') else {
            return Err(malformed("missing `)`"));
        };
        if !rest.starts_with('(') {
            return Err(malformed("text between `)` and `(`"));
        }
        let inner = rest[1..inner_end].trim();
        if inner.contains('(') {
            return Err(malformed("nested `(`"));
        }
        if let Some(a) = inner.strip_prefix("allocated:") {
            let a = a.trim();
            validate_role(a)?;
            allocation = Some(a.to_string());
        } else {
            if role.is_some() {
                return Err(malformed("more than one role"));
            }
            if inner.is_empty() {
                return Err(malformed("empty role"));
            }
            validate_role(inner)?;
            role = Some(inner.to_string());
        }
        rest = rest[inner_end + 1..].trim();
    }
    Ok((name.to_string(), allocation, role))
}

/// Parses a value with all white space removed, as Mesos' `values::parse` does.
fn parse_value(name: &str, raw: &str) -> Result<Value, ResourcesError> {
    let value: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if value.starts_with('[') {
        parse_ranges(name, &value).map(Value::Ranges)
    } else if value.starts_with('{') {
        parse_set(name, &value).map(Value::Set)
    } else {
        parse_scalar(name, &value).map(Value::Scalar)
    }
}

pub(super) fn parse_scalar(name: &str, value: &str) -> Result<Scalar, ResourcesError> {
    let invalid = || ResourcesError::InvalidScalar {
        name: name.to_string(),
        value: value.to_string(),
    };
    // Rust accepts "inf", "nan" and "infinity"; Mesos does not treat them as numbers.
    if !value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return Err(invalid());
    }
    let v: f64 = value.parse().map_err(|_| invalid())?;
    scalar_from_f64(name, value, v)
}

pub(super) fn scalar_from_f64(name: &str, text: &str, v: f64) -> Result<Scalar, ResourcesError> {
    let fields = || (name.to_string(), text.to_string());
    if v.is_nan() || v.is_infinite() {
        let (name, value) = fields();
        return Err(ResourcesError::InvalidScalar { name, value });
    }
    if v < 0.0 {
        let (name, value) = fields();
        return Err(ResourcesError::NegativeScalar { name, value });
    }
    let Some(s) = Scalar::from_f64(v) else {
        let (name, value) = fields();
        return Err(ResourcesError::ScalarTooLarge { name, value });
    };
    if v != 0.0 && s.is_zero() {
        let (name, value) = fields();
        return Err(ResourcesError::ScalarTooSmall { name, value });
    }
    Ok(s)
}

fn parse_ranges(name: &str, value: &str) -> Result<Ranges, ResourcesError> {
    let err = |reason: String| ResourcesError::InvalidRanges {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    if !value.ends_with(']') {
        return Err(err("missing closing `]`".into()));
    }
    let tokens: Vec<&str> = value
        .split(['[', ']', '-', ',', '\n'])
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.len() % 2 != 0 {
        return Err(err("expected pairs `begin-end`".into()));
    }
    let mut ranges = Vec::with_capacity(tokens.len() / 2);
    for pair in tokens.chunks_exact(2) {
        let num = |t: &str| {
            t.parse::<u64>()
                .map_err(|_| err(format!("`{t}` is not a non-negative integer")))
        };
        let (begin, end) = (num(pair[0])?, num(pair[1])?);
        if begin > end {
            return Err(err(format!("range {begin}-{end} is inverted")));
        }
        ranges.push(Range::new(begin, end));
    }
    Ok(Ranges::new(ranges))
}

fn parse_set(name: &str, value: &str) -> Result<Set, ResourcesError> {
    let err = |reason: String| ResourcesError::InvalidSet {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    if !value.ends_with('}') {
        return Err(err("missing closing `}`".into()));
    }
    let mut items: Vec<&str> = Vec::new();
    for item in value.split(['{', '}', ',', '\n']).filter(|t| !t.is_empty()) {
        if items.contains(&item) {
            return Err(err(format!("duplicate item `{item}`")));
        }
        items.push(item);
    }
    Ok(Set::new(items))
}

/// Mesos' `roles::validate`.
pub fn validate_role(role: &str) -> Result<(), ResourcesError> {
    let bad = |reason| {
        Err(ResourcesError::InvalidRole {
            role: role.to_string(),
            reason,
        })
    };
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return bad("a role must not be empty");
    }
    if role.starts_with('/') || role.ends_with('/') {
        return bad("a role must not start or end with `/`");
    }
    if role.contains("//") {
        return bad("a role must not contain `//`");
    }
    if role
        .chars()
        .any(|c| c.is_whitespace() || c == '\u{8}' || c.is_control())
    {
        return bad("a role must not contain white space or control characters");
    }
    if role.chars().any(|c| matches!(c, '(' | ')' | ':' | ';')) {
        return bad("a role must not contain `(`, `)`, `:` or `;`");
    }
    for component in role.split('/') {
        match component {
            "." | ".." => return bad("a role component must not be `.` or `..`"),
            "*" => return bad("`*` is only valid as the whole role"),
            c if c.starts_with('-') => return bad("a role component must not start with `-`"),
            _ => {}
        }
    }
    Ok(())
}
