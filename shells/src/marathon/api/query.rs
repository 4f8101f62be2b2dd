//! Query strings as Marathon reads them: repeated keys (`embed=a&embed=b`, `status[]=`),
//! booleans in any case (`force=True` from Python), percent-decoding.

/// A parsed query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

/// A query parameter with an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter '{name}': '{value}' is not a boolean (true or false)")]
pub struct BadBool {
    /// The parameter.
    pub name: String,
    /// Its value.
    pub value: String,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses `a=1&b=2` (no leading `?`).
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw else {
            return Query::default();
        };
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of `name` (or of `name[]`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name || k.strip_suffix("[]") == Some(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` and `name[]`, comma-separated values split.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name || k.strip_suffix("[]") == Some(name))
            .flat_map(|(_, v)| v.split(',').map(str::trim).map(str::to_string))
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// A boolean parameter, `default` when absent; `true`/`false` in any case (an empty value,
    /// as in `?force`, is true).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, BadBool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(BadBool {
                name: name.to_string(),
                value: v.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_any_case() {
        let q = Query::parse(Some("force=True&scale=FALSE&wipe"));
        assert!(q.flag("force", false).unwrap());
        assert!(!q.flag("scale", true).unwrap());
        assert!(q.flag("wipe", false).unwrap());
        assert!(q.flag("missing", true).unwrap());
        assert!(Query::parse(Some("force=yes"))
            .flag("force", false)
            .is_err());
    }

    #[test]
    fn repeated_and_bracketed_keys() {
        let q = Query::parse(Some(
            "embed=app.tasks&embed=app.counts&status[]=running&label=a%3D%3Db",
        ));
        assert_eq!(q.all("embed"), vec!["app.tasks", "app.counts"]);
        assert_eq!(q.all("status"), vec!["running"]);
        assert_eq!(q.get("label"), Some("a==b"));
        assert_eq!(Query::parse(Some("x=%zz%4")).get("x"), Some("%zz%4"));
    }
}
