//! `mesos-local`: a whole cluster in one process on loopback (being built; see the README).

fn main() -> anyhow::Result<()> {
    println!("mesos-local: not wired yet");
    Ok(())
}
