//! Thin daemons over `mesos-core`: HTTP, storage and container runtimes wired to the state machines.
