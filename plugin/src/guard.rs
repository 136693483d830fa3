//! The FFI boundary: turns isovec errors and panics into SQL errors.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// An SQL error whose message is `message`.
pub fn sql_error(message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(message.into().into())
}

/// An SQL error for an isovec error, prefixed with the SQL function's name.
pub fn isovec_error(function: &str, e: isovec::Error) -> rusqlite::Error {
    sql_error(format!("{function}: {e}"))
}

/// Runs `f`, turning a panic into an SQL error (a panic must never unwind into SQLite).
pub fn guarded<T>(function: &str, f: impl FnOnce() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            Err(sql_error(format!("{function}: internal error ({why}); the statement was stopped, please report it")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors() {
        let r: rusqlite::Result<()> = guarded("f", || panic!("boom"));
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("f: internal error (boom)"), "{msg}");
        assert_eq!(guarded("f", || Ok(3)).unwrap(), 3);
    }
}
