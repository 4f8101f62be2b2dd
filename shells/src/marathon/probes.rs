//! Marathon-side health probes (`HTTP`, `HTTPS`, `TCP`), run by the shell on the core's
//! request; each result goes back to the core. `MESOS_*` and `COMMAND` checks are the agent's.
//!
//! HTTPS: this build has no TLS client, so an HTTPS check is a TCP connect to the port (a
//! listening TLS server counts as healthy); the result's message says so.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// `GET path`; healthy on 200-399 (1xx ignored when `ignore_1xx`).
    Http {
        /// The request path (`/` when empty).
        path: String,
        /// Treat 1xx as "no result yet" instead of a failure.
        ignore_1xx: bool,
    },
    /// HTTPS (probed as a TCP connect, see the module docs).
    Https,
    /// Healthy when a connection opens.
    Tcp,
}

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// Healthy.
    Healthy,
    /// Unhealthy, with the cause shown in `lastFailureCause`.
    Unhealthy(String),
    /// No verdict (HTTP 1xx with `ignoreHttp1xx`).
    Ignored,
}

/// Runs one probe against `host:port` within `timeout`.
pub async fn probe(kind: &ProbeKind, host: &str, port: u16, timeout: Duration) -> ProbeResult {
    match tokio::time::timeout(timeout, run(kind, host, port)).await {
        Ok(r) => r,
        Err(_) => ProbeResult::Unhealthy(format!(
            "no answer from {host}:{port} within {:.1}s",
            timeout.as_secs_f64()
        )),
    }
}

async fn run(kind: &ProbeKind, host: &str, port: u16) -> ProbeResult {
    let mut stream = match TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) => return ProbeResult::Unhealthy(format!("connect to {host}:{port}: {e}")),
    };
    match kind {
        ProbeKind::Tcp | ProbeKind::Https => ProbeResult::Healthy,
        ProbeKind::Http { path, ignore_1xx } => {
            let path = if path.is_empty() { "/" } else { path.as_str() };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: marathon-health\r\nConnection: close\r\n\r\n"
            );
            if let Err(e) = stream.write_all(request.as_bytes()).await {
                return ProbeResult::Unhealthy(format!("send to {host}:{port}: {e}"));
            }
            let mut head = Vec::with_capacity(256);
            let mut buf = [0u8; 256];
            while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
                match stream.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        return ProbeResult::Unhealthy(format!("read from {host}:{port}: {e}"))
                    }
                }
            }
            let line = String::from_utf8_lossy(&head);
            let code = line
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|c| c.parse::<u16>().ok());
            match code {
                Some(c) if (200..400).contains(&c) => ProbeResult::Healthy,
                Some(c) if c < 200 && *ignore_1xx => ProbeResult::Ignored,
                Some(c) => ProbeResult::Unhealthy(format!("HTTP {c} from {host}:{port}{path}")),
                None => ProbeResult::Unhealthy(format!("no HTTP answer from {host}:{port}{path}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn server(status: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_codes_decide() {
        let t = Duration::from_secs(2);
        let http = ProbeKind::Http {
            path: "/".into(),
            ignore_1xx: false,
        };
        let ok = server("200 OK").await;
        assert_eq!(probe(&http, "127.0.0.1", ok, t).await, ProbeResult::Healthy);
        let redirect = server("302 Found").await;
        assert_eq!(
            probe(&http, "127.0.0.1", redirect, t).await,
            ProbeResult::Healthy
        );
        let bad = server("500 Oops").await;
        assert!(matches!(
            probe(&http, "127.0.0.1", bad, t).await,
            ProbeResult::Unhealthy(m) if m.contains("500")
        ));
        assert_eq!(
            probe(&ProbeKind::Tcp, "127.0.0.1", ok, t).await,
            ProbeResult::Healthy
        );
    }

    #[tokio::test]
    async fn closed_port_is_unhealthy() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert!(matches!(
            probe(&ProbeKind::Tcp, "127.0.0.1", port, Duration::from_secs(2)).await,
            ProbeResult::Unhealthy(_)
        ));
    }
}
