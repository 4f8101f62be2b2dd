//! Launch-to-running latency of each runtime, next to the raw tool on the same machine.
//!
//! "Running" means the task's own command has started: it opens a FIFO in its sandbox for
//! writing, which releases our blocking open for reading. No polling, so the clock stops within
//! microseconds of the command starting, for the adapters and the raw tools alike.
//!
//! Pairs (adapter vs raw), alternated run by run so drift hits both alike:
//! - `ProcessRuntime` vs a plain `sh -c` spawn (tokio::process);
//! - `DockerRuntime` vs `docker run -d` (CLI) of the same image, command and bind mount;
//! - `LxcRuntime` vs `lxc-execute` with an equivalent config file (written outside the timing).
//!
//! ```text
//! cargo bench -p mesos-runtime --bench runtime_latency -- [--runs N] [--only process|docker|lxc]
//! ```
//! Docker runs when `DOCKER_HOST` and `MESOS_TEST_BUSYBOX_IMAGE` are set (`scripts/services.sh
//! start docker`), LXC when `lxc-execute` exists. Killing and cleanup are outside the timing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_runtime::{
    ContainerInfo, ContainerRuntime, ContainerSpec, DockerConfig, DockerInfo, DockerRuntime,
    LxcConfig, LxcInfo, LxcRuntime, ProcessConfig, ProcessRuntime,
};

const READY: &str = "echo r > \"$MESOS_SANDBOX/ready\"; exec sleep 60";

struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        // Nearest rank.
        let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
        s[rank.min(s.len()) - 1]
    }

    fn mean(&self) -> Duration {
        self.samples.iter().sum::<Duration>() / self.samples.len().max(1) as u32
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Creates `dir` with a FIFO `ready` in it and starts a blocking open for reading; the returned
/// handle resolves at the instant a writer opens it.
fn arm(dir: &Path) -> tokio::task::JoinHandle<Instant> {
    std::fs::create_dir_all(dir).unwrap();
    let fifo = dir.join("ready");
    let _ = std::fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&fifo).unwrap();
        let t = Instant::now();
        drop(f);
        t
    })
}

/// When the task in `sandbox` became ready; on a timeout, says which task and shows its output
/// (a wedged engine must not look like a fast one).
async fn ready(h: tokio::task::JoinHandle<Instant>, sandbox: &Path) -> Instant {
    match tokio::time::timeout(Duration::from_secs(60), h).await {
        Ok(t) => t.unwrap(),
        Err(_) => {
            let out = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
            let err = std::fs::read_to_string(sandbox.join("stderr")).unwrap_or_default();
            panic!(
                "{} never became ready within 60 s; stdout {out:?}, stderr {err:?}",
                sandbox.display()
            );
        }
    }
}

struct Bench {
    root: PathBuf,
    runs: usize,
    /// The `.lxc.conf` the LXC adapter wrote for its warm-up task.
    lxc_template: PathBuf,
}

impl Bench {
    fn sandbox(&self, kind: &str, i: usize) -> PathBuf {
        self.root.join(format!("{kind}-{i}"))
    }

    async fn adapter(
        &self,
        rt: &dyn ContainerRuntime,
        kind: &str,
        i: usize,
        info: ContainerInfo,
    ) -> Duration {
        let sb = self.sandbox(kind, i);
        let armed = arm(&sb);
        let mut spec = ContainerSpec::shell(format!("bench-{kind}-{i}"), READY, &sb);
        spec.container = info;
        spec.limits.cpus = Some(0.1);
        spec.limits.mem_mb = Some(64.0);
        let t0 = Instant::now();
        rt.launch(spec).await.unwrap();
        let t1 = ready(armed, &sb).await;
        let id = format!("bench-{kind}-{i}").into();
        rt.kill(&id, Duration::ZERO).await.unwrap();
        rt.wait(&id).await.unwrap();
        t1 - t0
    }

    async fn raw_process(&self, i: usize) -> Duration {
        let sb = self.sandbox("raw-process", i);
        let armed = arm(&sb);
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new("/bin/sh")
            .args(["-c", READY])
            .env("MESOS_SANDBOX", &sb)
            .current_dir(&sb)
            .spawn()
            .unwrap();
        let t1 = ready(armed, &sb).await;
        child.kill().await.unwrap();
        t1 - t0
    }

    async fn raw_docker(&self, i: usize, image: &str) -> Duration {
        let sb = self.sandbox("raw-docker", i);
        let armed = arm(&sb);
        let name = format!("mesos-bench-raw-{}-{i}", std::process::id());
        let t0 = Instant::now();
        let out = tokio::process::Command::new("docker")
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "-e",
                "MESOS_SANDBOX=/mnt/mesos/sandbox",
                "--cpu-shares",
                "102",
            ])
            .args([
                "--memory",
                "64m",
                "-v",
                &format!("{}:/mnt/mesos/sandbox", sb.display()),
                image,
            ])
            .args(["/bin/sh", "-c", READY])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t1 = ready(armed, &sb).await;
        let _ = tokio::process::Command::new("docker")
            .args(["rm", "-f", &name])
            .output()
            .await;
        t1 - t0
    }

    /// Raw `lxc-execute` with the adapter's config. With `same_cgroups`, LXC's cgroups go
    /// below a cgroup made beforehand (outside the timing), exactly as the adapter places them;
    /// without, LXC picks its default placement.
    async fn raw_lxc(&self, i: usize, same_cgroups: bool) -> Duration {
        let kind = if same_cgroups {
            "raw-lxc-same"
        } else {
            "raw-lxc"
        };
        let sb = self.sandbox(kind, i);
        let armed = arm(&sb);
        let conf = sb.join("raw.conf");
        // The adapter's own config for the same kind of task, minus the lines that place LXC's
        // cgroups below the adapter's: the raw tool does the same work in the container.
        let template =
            std::fs::read_to_string(&self.lxc_template).expect("adapter config from the warm-up");
        let name = format!("mesos-bench-{kind}-{}-{i}", std::process::id());
        let ours = format!("mesos-rs-bench-raw/{name}");
        let made: Vec<PathBuf> = if same_cgroups {
            ["memory", "cpu", "cpuacct"]
                .iter()
                .map(|h| Path::new("/sys/fs/cgroup").join(h).join(&ours))
                .inspect(|d| std::fs::create_dir_all(d).unwrap())
                .collect()
        } else {
            Vec::new()
        };
        let text: String = template
            .lines()
            .filter(|l| !l.starts_with("lxc.cgroup.dir."))
            .chain(if same_cgroups {
                vec!["@monitor", "@payload"]
            } else {
                vec![]
            })
            .map(|l| {
                if l == "@monitor" {
                    format!("lxc.cgroup.dir.monitor = {ours}/monitor\n")
                } else if l == "@payload" {
                    format!("lxc.cgroup.dir.container = {ours}/payload\n")
                } else if l.starts_with("lxc.mount.entry") && l.contains("mnt/mesos/sandbox") {
                    format!(
                        "lxc.mount.entry = {} mnt/mesos/sandbox none bind 0 0\n",
                        sb.display()
                    )
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&conf, text).unwrap();
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new("lxc-execute")
            .args(["-n", &name, "-f"])
            .arg(&conf)
            .args(["--", "/bin/sh", "-c", READY])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t1 = ready(armed, &sb).await;
        // As the adapter's kill does: SIGTERM (LXC forwards it), then SIGKILL if needed, so
        // LXC removes its cgroups.
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        // LXC leaves its cgroups in every hierarchy; remove them and ours (outside the timing).
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            for sub in [
                format!("{ours}/monitor"),
                format!("{ours}/payload"),
                ours.clone(),
            ] {
                let _ = std::fs::remove_dir(h.path().join(sub));
            }
        }
        drop(made);
        t1 - t0
    }
}

/// Records a finished pair and prints its row at once, so a later failure loses nothing.
fn progress(pairs: &mut Vec<(Stats, Stats)>, pair: (Stats, Stats)) {
    eprintln!(
        "done: {} p50 {} ms vs {} p50 {} ms",
        pair.0.name,
        ms(pair.0.pct(50.0)),
        pair.1.name,
        ms(pair.1.pct(50.0))
    );
    pairs.push(pair);
}

fn report(pairs: &[(Stats, Stats)]) {
    println!();
    println!("| runtime | p50 ms | p99 ms | mean ms | raw baseline | raw p50 ms | raw p99 ms | raw mean ms | p50 overhead | p99 overhead |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for (a, r) in pairs {
        let over = |x: Duration, y: Duration| (x.as_secs_f64() / y.as_secs_f64() - 1.0) * 100.0;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:+.1}% | {:+.1}% |",
            a.name,
            ms(a.pct(50.0)),
            ms(a.pct(99.0)),
            ms(a.mean()),
            r.name,
            ms(r.pct(50.0)),
            ms(r.pct(99.0)),
            ms(r.mean()),
            over(a.pct(50.0), r.pct(50.0)),
            over(a.pct(99.0), r.pct(99.0)),
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = value("--runs").and_then(|v| v.parse().ok()).unwrap_or(100);
    let only = value("--only");
    let wanted = |k: &str| only.as_deref().is_none_or(|o| o == k);

    let root = std::env::temp_dir().join(format!("mesos-rt-bench-{}", std::process::id()));
    let lxc_template = root.join("warm-lxc-0/.lxc.conf");
    let bench = Bench {
        root: root.clone(),
        runs,
        lxc_template,
    };
    let mut pairs = Vec::new();
    println!("launch-to-running latency, {runs} tasks per runtime, adapter and raw alternated");

    if wanted("process") {
        let rt = ProcessRuntime::new(ProcessConfig::new(root.join("ckpt-process")));
        // The same runtime without cgroups, to show what the cgroup (and the fork its
        // pre-exec join forces instead of posix_spawn) costs.
        let mut no_cg_config = ProcessConfig::new(root.join("ckpt-process-nocg"));
        no_cg_config.cgroups = false;
        let no_cg = ProcessRuntime::new(no_cg_config);
        let (mut a, mut r, mut n) = (Vec::new(), Vec::new(), Vec::new());
        // One untimed warm-up each (page cache, first cgroup creation).
        bench
            .adapter(&rt, "warm-process", 0, ContainerInfo::Mesos)
            .await;
        bench
            .adapter(&no_cg, "warm-process-nocg", 0, ContainerInfo::Mesos)
            .await;
        bench.raw_process(usize::MAX).await;
        for i in 0..bench.runs {
            a.push(bench.adapter(&rt, "process", i, ContainerInfo::Mesos).await);
            n.push(
                bench
                    .adapter(&no_cg, "process-nocg", i, ContainerInfo::Mesos)
                    .await,
            );
            r.push(bench.raw_process(i).await);
        }
        let raw = r.clone();
        progress(
            &mut pairs,
            (
                Stats {
                    name: "ProcessRuntime (cgroups v1, checkpoint)".into(),
                    samples: a,
                },
                Stats {
                    name: "`sh -c` spawn".into(),
                    samples: r,
                },
            ),
        );
        progress(
            &mut pairs,
            (
                Stats {
                    name: "ProcessRuntime, cgroups off".into(),
                    samples: n,
                },
                Stats {
                    name: "`sh -c` spawn (same samples)".into(),
                    samples: raw,
                },
            ),
        );
    }

    if wanted("docker") {
        match (
            std::env::var("DOCKER_HOST"),
            std::env::var("MESOS_TEST_BUSYBOX_IMAGE"),
        ) {
            (Ok(_), Ok(image)) => {
                let rt = DockerRuntime::new(DockerConfig::new(
                    format!("bench{}", std::process::id()),
                    root.join("ckpt-docker"),
                ));
                let info = || ContainerInfo::Docker(DockerInfo::new(image.clone()));
                let (mut a, mut r) = (Vec::new(), Vec::new());
                bench.adapter(&rt, "warm-docker", 0, info()).await;
                bench.raw_docker(usize::MAX, &image).await;
                for i in 0..bench.runs {
                    a.push(bench.adapter(&rt, "docker", i, info()).await);
                    r.push(bench.raw_docker(i, &image).await);
                }
                progress(
                    &mut pairs,
                    (
                        Stats {
                            name: "DockerRuntime (bollard)".into(),
                            samples: a,
                        },
                        Stats {
                            name: "`docker run -d` (CLI)".into(),
                            samples: r,
                        },
                    ),
                );
            }
            _ => println!("docker: skipped (DOCKER_HOST / MESOS_TEST_BUSYBOX_IMAGE not set)"),
        }
    }

    if wanted("lxc") {
        if std::path::Path::new("/usr/bin/lxc-execute").exists() {
            let rt = LxcRuntime::new(LxcConfig::new(
                format!("bench{}", std::process::id()),
                root.join("ckpt-lxc"),
            ));
            let (mut a, mut r) = (Vec::new(), Vec::new());
            // The warm-up also creates the busybox template base if needed.
            bench
                .adapter(&rt, "warm-lxc", 0, ContainerInfo::Lxc(LxcInfo::busybox()))
                .await;
            bench.raw_lxc(usize::MAX, false).await;
            bench.raw_lxc(usize::MAX, true).await;
            let mut same = Vec::new();
            for i in 0..bench.runs {
                a.push(
                    bench
                        .adapter(&rt, "lxc", i, ContainerInfo::Lxc(LxcInfo::busybox()))
                        .await,
                );
                r.push(bench.raw_lxc(i, false).await);
                same.push(bench.raw_lxc(i, true).await);
            }
            progress(
                &mut pairs,
                (
                    Stats {
                        name: "LxcRuntime (lxc-execute + cgroup + checkpoint)".into(),
                        samples: a.clone(),
                    },
                    Stats {
                        name: "`lxc-execute`, LXC's default cgroup placement".into(),
                        samples: r,
                    },
                ),
            );
            progress(
                &mut pairs,
                (
                    Stats {
                        name: "LxcRuntime (same samples)".into(),
                        samples: a,
                    },
                    Stats {
                        name: "`lxc-execute`, adapter's config and cgroup placement".into(),
                        samples: same,
                    },
                ),
            );
        } else {
            println!("lxc: skipped (lxc-execute not installed)");
        }
    }

    report(&pairs);
    let _ = std::fs::remove_dir_all(&root);
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join("mesos-rs-bench-raw"));
    }
}
