//! resources (being written).
