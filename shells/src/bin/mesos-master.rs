//! `mesos-master` (being written).

fn main() {}
