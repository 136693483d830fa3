//! Command-line commands; `main.rs` parses arguments and dispatches to them.

pub mod bench_ann;
pub mod store_cmds;
