//! Mesos' fetcher, in small: puts a task's `CommandInfo.uris` into its sandbox before launch.
//!
//! Each URI is `{"value", "executable", "extract", "output_file", "cache"}` (v1 names). `http://`
//! URLs are downloaded; `file://` URLs and absolute paths are copied. Archives (`.tar`, `.tar.gz`,
//! `.tgz`, `.tar.bz2`, `.tar.xz`, `.zip`) are extracted into the sandbox unless `extract` is
//! false; `executable` files get mode 755. `cache` is accepted and ignored (no cache). `https://`
//! and other schemes are refused with a message, never skipped silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::Value as Json;
use tokio::io::AsyncWriteExt as _;

/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// One URI to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchUri {
    /// The URL or path.
    pub value: String,
    /// Make the file executable.
    pub executable: bool,
    /// Extract archives.
    pub extract: bool,
    /// The name in the sandbox (default: the URI's last path component).
    pub output_file: Option<String>,
}

impl FetchUri {
    fn file_name(&self) -> Result<String, String> {
        if let Some(o) = &self.output_file {
            if o.is_empty() || o.contains('/') || o == "." || o == ".." {
                return Err(format!(
                    "uri {}: output_file `{o}` must be a plain file name",
                    self.value
                ));
            }
            return Ok(o.clone());
        }
        let path = self.value.split(['?', '#']).next().unwrap_or("");
        let name = path.rsplit('/').next().unwrap_or("");
        if name.is_empty() || name == "." || name == ".." {
            return Err(format!(
                "uri {}: cannot tell a file name from it (give output_file)",
                self.value
            ));
        }
        Ok(name.to_string())
    }
}

/// Reads `CommandInfo.uris`, refusing what cannot be fetched.
pub fn parse_uris(uris: &[Json]) -> Result<Vec<FetchUri>, String> {
    let mut out = Vec::with_capacity(uris.len());
    for (i, u) in uris.iter().enumerate() {
        let at = format!("command.uris[{i}]");
        let value = u
            .get("value")
            .and_then(Json::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("{at}.value is required"))?
            .trim()
            .to_string();
        let flag = |name: &str, default: bool| match u.get(name) {
            None | Some(Json::Null) => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("{at}.{name} must be a boolean, got {other}")),
        };
        let output_file = match u.get("output_file") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("{at}.output_file must be a string, got {other}")),
        };
        let scheme_ok =
            value.starts_with("http://") || value.starts_with("file://") || value.starts_with('/');
        if !scheme_ok {
            return Err(format!(
                "{at}: cannot fetch `{value}`: only http://, file:// and absolute paths are supported (this agent is built without TLS)"
            ));
        }
        let uri = FetchUri {
            value,
            executable: flag("executable", false)?,
            extract: flag("extract", true)?,
            output_file,
        };
        uri.file_name().map_err(|e| format!("{at}: {e}"))?;
        out.push(uri);
    }
    Ok(out)
}

fn archive_kind(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    if n.ends_with(".zip") {
        Some("zip")
    } else if [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz",
    ]
    .iter()
    .any(|s| n.ends_with(s))
    {
        Some("tar")
    } else {
        None
    }
}

/// Fetches every URI into `sandbox` (created if missing).
pub async fn fetch_all(
    http: &reqwest::Client,
    uris: &[FetchUri],
    sandbox: &Path,
) -> Result<(), String> {
    if uris.is_empty() {
        return Ok(());
    }
    tokio::fs::create_dir_all(sandbox)
        .await
        .map_err(|e| format!("cannot create the sandbox {}: {e}", sandbox.display()))?;
    for uri in uris {
        fetch_one(http, uri, sandbox)
            .await
            .map_err(|e| format!("Failed to fetch {}: {e}", uri.value))?;
    }
    Ok(())
}

async fn fetch_one(http: &reqwest::Client, uri: &FetchUri, sandbox: &Path) -> Result<(), String> {
    let name = uri.file_name()?;
    let dest: PathBuf = sandbox.join(&name);
    if uri.value.starts_with("http://") {
        let download = async {
            let resp = http
                .get(&uri.value)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status()));
            }
            let mut file = tokio::fs::File::create(&dest)
                .await
                .map_err(|e| format!("{}: {e}", dest.display()))?;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| format!("{}: {e}", dest.display()))?;
            }
            file.flush()
                .await
                .map_err(|e| format!("{}: {e}", dest.display()))
        };
        tokio::time::timeout(DOWNLOAD_TIMEOUT, download)
            .await
            .map_err(|_| format!("download took longer than {DOWNLOAD_TIMEOUT:?}"))??;
    } else {
        let src = uri.value.strip_prefix("file://").unwrap_or(&uri.value);
        tokio::fs::copy(src, &dest)
            .await
            .map_err(|e| format!("cannot copy {src}: {e}"))?;
    }
    if uri.executable {
        use std::os::unix::fs::PermissionsExt as _;
        tokio::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(|e| format!("chmod {}: {e}", dest.display()))?;
    } else if uri.extract {
        if let Some(kind) = archive_kind(&name) {
            let mut cmd = match kind {
                "zip" => {
                    let mut c = tokio::process::Command::new("unzip");
                    c.arg("-o").arg("-q").arg(&dest).arg("-d").arg(sandbox);
                    c
                }
                _ => {
                    let mut c = tokio::process::Command::new("tar");
                    c.arg("-xf").arg(&dest).arg("-C").arg(sandbox);
                    c
                }
            };
            let out = cmd
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(|e| format!("cannot run the {kind} extractor: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "extracting {name} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uris_parse_with_mesos_defaults_and_bad_ones_say_why() {
        let u = parse_uris(&[json!({"value": "http://h/x/app.tgz"})]).unwrap();
        assert_eq!(u[0].file_name().unwrap(), "app.tgz");
        assert!(u[0].extract && !u[0].executable);
        let err = parse_uris(&[json!({"value": "https://h/a"})]).unwrap_err();
        assert!(err.contains("https://h/a") && err.contains("TLS"), "{err}");
        let err = parse_uris(&[json!({"value": "http://h/"})]).unwrap_err();
        assert!(err.contains("output_file"), "{err}");
        let err = parse_uris(&[json!({"value": "/a", "output_file": "../x"})]).unwrap_err();
        assert!(err.contains("plain file name"), "{err}");
        assert!(parse_uris(&[json!({})])
            .unwrap_err()
            .contains("value is required"));
    }

    #[tokio::test]
    async fn files_are_copied_made_executable_and_archives_extracted() {
        let dir = std::env::temp_dir().join(format!("agent-fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("pkg")).unwrap();
        std::fs::write(src.join("run.sh"), "#!/bin/sh\necho ok\n").unwrap();
        std::fs::write(src.join("pkg/inside.txt"), "inside").unwrap();
        let tar = std::process::Command::new("tar")
            .arg("-czf")
            .arg(src.join("pkg.tgz"))
            .arg("-C")
            .arg(&src)
            .arg("pkg")
            .status()
            .unwrap();
        assert!(tar.success());
        let uris = parse_uris(&[
            json!({"value": format!("file://{}", src.join("run.sh").display()), "executable": true}),
            json!({"value": src.join("pkg.tgz").display().to_string()}),
        ])
        .unwrap();
        let sandbox = dir.join("sandbox");
        fetch_all(&reqwest::Client::new(), &uris, &sandbox)
            .await
            .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(sandbox.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_to_string(sandbox.join("pkg/inside.txt")).unwrap(),
            "inside"
        );
        let missing = parse_uris(&[json!({"value": "/no/such/file"})]).unwrap();
        let err = fetch_all(&reqwest::Client::new(), &missing, &sandbox)
            .await
            .unwrap_err();
        assert!(err.contains("/no/such/file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
