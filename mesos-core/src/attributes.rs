//! attributes (being written).
