//! Command-line front ends of the library (argument structs and their `run` functions).

pub mod train;
