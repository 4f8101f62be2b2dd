//! local (being written).
