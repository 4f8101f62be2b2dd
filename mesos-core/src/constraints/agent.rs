//! What constraints see of an agent: its hostname, fault domain and attributes rendered as text.
//!
//! Marathon compares constraint values as strings, so each attribute is rendered once, when the
//! view is built, the way Marathon renders it (`Constraints.scala`): text as is, scalars with
//! `DecimalFormat("0.###")` (half-even), ranges as `[b-e,b-e]`, sets as `{a,b}` with sorted items.
//! Rendering up front keeps evaluation allocation-free, which the placement benchmark relies on.

use serde::{Deserialize, Serialize};

use crate::attributes::{AttributeValue, Attributes};

use super::Field;

/// An agent as placement constraints see it: an offer's agent, or the agent a placed instance
/// runs on.
///
/// ```
/// use mesos_core::attributes::Attributes;
/// use mesos_core::constraints::AgentView;
/// let a = AgentView::new("h1")
///     .with_attributes(Attributes::parse("rack:r1;level:0.8;load:1.00051").unwrap())
///     .with_domain("eu", "eu-1a");
/// assert_eq!(a.attribute("level"), Some("0.8"));
/// assert_eq!(a.attribute("load"), Some("1.001"));
/// assert_eq!(a.region(), Some("eu"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentView {
    hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    /// Attribute name and rendered value, in the agent's order (the first of a name wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<(String, String)>,
}

impl AgentView {
    /// An agent with a hostname, no attributes and no fault domain.
    pub fn new(hostname: impl Into<String>) -> Self {
        AgentView {
            hostname: hostname.into(),
            ..AgentView::default()
        }
    }

    /// Replaces the attributes (rendered as Marathon renders them).
    pub fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes
            .iter()
            .map(|a| (a.name.clone(), render_attribute(&a.value)))
            .collect();
        self
    }

    /// Adds one attribute whose value is already text (as Marathon would render it).
    pub fn with_text_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// Sets the fault domain (`@region`, `@zone`).
    pub fn with_domain(mut self, region: impl Into<String>, zone: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self.zone = Some(zone.into());
        self
    }

    /// The hostname.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The fault domain's region, if the agent has one.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The fault domain's zone, if the agent has one.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// The rendered value of the attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value a constraint on `field` reads from this agent; `None` when the agent lacks it.
    pub fn value(&self, field: &Field) -> Option<&str> {
        match field {
            Field::Hostname => Some(&self.hostname),
            Field::Region => self.region(),
            Field::Zone => self.zone(),
            Field::Attribute(name) => self.attribute(name),
        }
    }
}

/// Renders an attribute value as Marathon compares it.
pub fn render_attribute(value: &AttributeValue) -> String {
    match value {
        AttributeValue::Text(t) => t.clone(),
        AttributeValue::Scalar(v) => format_scalar(*v),
        AttributeValue::Ranges(r) => {
            let parts: Vec<String> = r.iter().map(|x| format!("{}-{}", x.begin, x.end)).collect();
            format!("[{}]", parts.join(","))
        }
        AttributeValue::Set(s) => {
            let mut items: Vec<&str> = s.items().iter().map(String::as_str).collect();
            items.sort_unstable();
            format!("{{{}}}", items.join(","))
        }
    }
}

/// Formats a number as Java's `DecimalFormat("0.###")` with half-even rounding does:
/// at most three decimals, no trailing zeros, no trailing dot.
///
/// ```
/// use mesos_core::constraints::format_scalar;
/// assert_eq!(format_scalar(1.0), "1");
/// assert_eq!(format_scalar(0.8), "0.8");
/// assert_eq!(format_scalar(1.0005), "1");
/// assert_eq!(format_scalar(1.00051), "1.001");
/// ```
pub fn format_scalar(value: f64) -> String {
    if !value.is_finite() {
        // Mesos never hands out such attributes; keep a stable rendering anyway.
        return value.to_string();
    }
    // Rust rounds the exact binary value, ties to even, which is what HALF_EVEN does.
    let mut s = format!("{value:.3}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        // DecimalFormat keeps the sign of a negative number rounded to zero.
        return "-0".to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_marathon() {
        let a = AgentView::new("h").with_attributes(
            Attributes::parse("r:rack-1;s:2.0;p:[7-8,1-2];g:{b,a};x:0.0625").unwrap(),
        );
        assert_eq!(a.attribute("r"), Some("rack-1"));
        assert_eq!(a.attribute("s"), Some("2"));
        assert_eq!(a.attribute("p"), Some("[1-2,7-8]"));
        assert_eq!(a.attribute("g"), Some("{a,b}"));
        // An exact tie rounds to even.
        assert_eq!(a.attribute("x"), Some("0.062"));
        assert_eq!(a.value(&Field::Hostname), Some("h"));
        assert_eq!(a.value(&Field::Zone), None);
    }
}
