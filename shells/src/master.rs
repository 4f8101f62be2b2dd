//! master (being written).
