//! `mesos-agent` (being written).

fn main() {}
