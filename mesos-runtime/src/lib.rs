//! The `ContainerRuntime` trait and its adapters (processes, Docker, LXC).
