//! The encoders' precision: `ISOVEC_DTYPE` (`f32`, `f16`, `bf16` or `int8`, as `isovec --dtype`
//! takes them), read when the extension is loaded into a connection; f32 without it.
//!
//! Loaded models are shared by the whole process ([`crate::cache`]), so the precision is too: the
//! first load fixes it (set or not), and a later load that asks for another fails instead of
//! leaving some texts encoded one way and some another. An unknown name, or `int8` on a CPU
//! without AVX2, fails the load with what to set instead (the CPU check comes with the first
//! model load, where the library makes it).
//!
//! The precision is not part of a pipeline's id: `int8` vectors are within about 0.01 cosine of
//! f32's, and a collection filled in one precision is searched in another.

use std::sync::OnceLock;

use isovec::encoder::EncoderOptions;
use isovec::{Error, Result};

/// The environment variable that names the precision.
pub const DTYPE_VAR: &str = "ISOVEC_DTYPE";

/// The precision's name as given (lower case), fixed by the first load.
static PRECISION: OnceLock<String> = OnceLock::new();

/// Reads [`DTYPE_VAR`] (called at each load into a connection); an unknown name, or one other
/// than the process's, fails the load.
pub fn configure_from_env() -> Result<()> {
    // Unset or empty: f32. A name that is not Unicode reaches the check below with U+FFFD in it.
    let asked = std::env::var_os(DTYPE_VAR)
        .map(|raw| raw.to_string_lossy().trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "f32".into());
    EncoderOptions::default()
        .with_precision(&asked)
        .map_err(|e| Error::InvalidInput(format!("{DTYPE_VAR}: {e}; set one of those, or unset it for f32")))?;
    let fixed = PRECISION.get_or_init(|| asked.clone());
    if *fixed != asked {
        return Err(Error::InvalidInput(format!(
            "{DTYPE_VAR}={asked}: this process already encodes in {fixed} (its first load of the extension); the precision cannot change once set"
        )));
    }
    Ok(())
}

/// The encoder options of the process's precision.
pub fn encoder_options() -> Result<EncoderOptions> {
    EncoderOptions::default().with_precision(PRECISION.get().map_or("f32", String::as_str))
}
