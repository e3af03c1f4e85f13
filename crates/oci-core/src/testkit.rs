//! The shared behavioural suite (being written).
