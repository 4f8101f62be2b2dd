//! App and group identifiers: absolute paths such as `/prod/db/mongo`.
//!
//! Marathon drops empty segments (so `/trailing/` is `/trailing`), resolves relative ids against
//! a base (`nginxgmg` posted to `/v2/apps` becomes `/nginxgmg`) and requires every segment to be
//! a lowercase DNS-like label. Validation returns every problem of an id with Marathon's messages.

use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern each segment must fully match (`PathId.scala`'s `ID_PATH_SEGMENT_PATTERN`).
pub const ID_SEGMENT_PATTERN: &str = r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$";

const RESERVED: [&str; 5] = ["restart", "tasks", "versions", ".", ".."];

fn segment_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Java's `matches` anchors the whole pattern; the pattern's own `^...|...$` does not.
        #[allow(clippy::expect_used)]
        Regex::new(&format!("^(?:{ID_SEGMENT_PATTERN})$")).expect("constant pattern compiles")
    })
}

/// An absolute path id (`/a/b`); the root is `/`. Cloning is cheap (shared segments): launches
/// and explanations carry it.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(Arc<[String]>);

impl PathId {
    /// The root `/`.
    pub fn root() -> Self {
        PathId(Arc::from(Vec::new()))
    }

    /// Parses `id` relative to `base`, then validates it; on failure returns every message.
    ///
    /// ```
    /// use mesos_core::marathon::PathId;
    /// assert_eq!(PathId::parse("nginxgmg", &PathId::root()).unwrap().to_string(), "/nginxgmg");
    /// assert_eq!(PathId::parse("/trailing/", &PathId::root()).unwrap().to_string(), "/trailing");
    /// assert!(PathId::parse("uppercaseLettersNoGood", &PathId::root()).is_err());
    /// ```
    pub fn parse(id: &str, base: &PathId) -> Result<PathId, Vec<String>> {
        let raw: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
        let mut errors = Vec::new();
        if raw.is_empty() {
            errors.push("Path must contain at least one path element".to_string());
            return Err(errors);
        }
        if raw.iter().any(|s| !segment_regex().is_match(s)) {
            errors.push(format!(
                "must fully match regular expression '{ID_SEGMENT_PATTERN}'"
            ));
        }
        if raw.last().is_some_and(|l| RESERVED.contains(l)) {
            errors.push(
                "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."
                    .to_string(),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut out: Vec<String> = if id.starts_with('/') {
            Vec::new()
        } else {
            base.0.to_vec()
        };
        for (i, seg) in raw.iter().enumerate() {
            match *seg {
                "." => {}
                ".." => {
                    if out.pop().is_none() {
                        let prefix: Vec<&str> = raw[..=i].to_vec();
                        return Err(vec![format!(
                            "Identifier is not child of '/{}'",
                            prefix.join("/")
                        )]);
                    }
                }
                s => out.push(s.to_string()),
            }
        }
        if out.is_empty() {
            return Err(vec![
                "Path must contain at least one path element".to_string()
            ]);
        }
        Ok(PathId(Arc::from(out)))
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The enclosing group (`/a` for `/a/b`; the root's parent is the root).
    pub fn parent(&self) -> PathId {
        let mut v = self.0.to_vec();
        v.pop();
        PathId(Arc::from(v))
    }

    /// True when `self` lies strictly inside `group`.
    pub fn is_child_of(&self, group: &PathId) -> bool {
        self.0.len() > group.0.len() && self.0.starts_with(&group.0)
    }

    /// The last segment joined by dots in reverse order, as Marathon builds task-id prefixes
    /// (`/prod/web` gives `web.prod`).
    pub fn safe_name(&self) -> String {
        let mut v: Vec<&str> = self.0.iter().map(String::as_str).collect();
        v.reverse();
        v.join(".")
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for s in self.0.iter() {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathId({self})")
    }
}

impl Serialize for PathId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PathId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        PathId::parse(&s, &PathId::root()).map_err(|e| serde::de::Error::custom(e.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        let root = PathId::root();
        for ok in [
            "/numbered9",
            "/9numbered",
            "/dot.ted",
            "/deep/ly/nes/ted",
            "/all.to-9gether/now-huh12/nest/nest",
        ] {
            assert_eq!(PathId::parse(ok, &root).unwrap().to_string(), ok);
        }
        for bad in [
            "a b",
            "a#$%^&*b",
            "-dash-disallowed-at-start",
            "dash-disallowed-at-end-",
            "uppercaseLettersNoGood",
            "/.../asd",
            "/app!",
            "/test/.",
            "/../someid",
            "/",
            "",
        ] {
            assert!(PathId::parse(bad, &root).is_err(), "{bad}");
        }
        assert_eq!(
            PathId::parse("/../someid", &root).unwrap_err(),
            vec!["Identifier is not child of '/..'".to_string()]
        );
        let base = PathId::parse("/a/b", &root).unwrap();
        assert_eq!(PathId::parse("../c", &base).unwrap().to_string(), "/a/c");
        assert_eq!(PathId::parse("./c", &base).unwrap().to_string(), "/a/b/c");
        assert_eq!(base.safe_name(), "b.a");
    }
}
