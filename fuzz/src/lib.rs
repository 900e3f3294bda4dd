//! The fuzz targets, one function each. `src/bin/<target>.rs` hands AFL's
//! inputs to them; `tests/fuzz_corpora.rs` in the main crate replays every
//! corpus file through every target (it includes `targets.rs`, so it needs
//! neither AFL nor this crate).

pub mod targets;
