//! Benchmarks and the trace-driven simulator.
