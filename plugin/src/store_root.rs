//! The optional store root: with `ISOVEC_SQLITE_ROOT` set, SQL opens and creates stores, and
//! reads model folders and transform files, only inside that directory (the default model,
//! which SQL does not name, is read where it is installed).
//!
//! Without it any statement can make a store wherever the host process may write
//! (`isovec_upsert('../../tmp/x', …)`). The variable is read when the extension is loaded into a
//! connection, never from SQL, so a statement cannot widen it. Opened stores are shared by the
//! whole process ([`crate::cache`]), so the root is too: the first load that finds the variable
//! fixes it, and a later load with another value fails (until SQLite unloads the extension, when
//! its last connection closes).
//!
//! A store path is resolved before it is compared: made absolute, symlinks and `..` resolved up
//! to the deepest part that exists; the parts that do not exist yet may not contain `..` (they
//! cannot be resolved). So neither `..` nor a symlink inside the root leads out of it.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use isovec::{Error, Result};

/// The environment variable that holds the store root.
pub const ROOT_VAR: &str = "ISOVEC_SQLITE_ROOT";

static ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Reads [`ROOT_VAR`] (called at each load into a connection); an unusable root fails the load.
pub fn configure_from_env() -> Result<()> {
    let Some(raw) = std::env::var_os(ROOT_VAR) else {
        return Ok(());
    };
    let given = Path::new(&raw);
    let root = std::fs::canonicalize(given).ok().filter(|p| p.is_dir()).ok_or_else(|| {
        Error::InvalidInput(format!(
            "{ROOT_VAR}={}: not an existing directory; create it, or unset {ROOT_VAR} to allow stores anywhere",
            given.display()
        ))
    })?;
    let fixed = ROOT.get_or_init(|| root.clone());
    if *fixed != root {
        return Err(Error::InvalidInput(format!(
            "{ROOT_VAR}={}: this process already has the store root {}; a root cannot change once set",
            given.display(),
            fixed.display()
        )));
    }
    Ok(())
}

/// Errors unless the store `dir` lies inside the store root; any path passes when no root is set.
pub fn check(dir: &Path) -> Result<()> {
    check_path(dir, "store", "stores")
}

/// Errors unless `path`, named by SQL, lies inside the store root; `what` and `plural` name
/// what it is in the error ("model folder", "model folders").
pub fn check_path(path: &Path, what: &str, plural: &str) -> Result<()> {
    match ROOT.get() {
        None => Ok(()),
        Some(root) => check_inside(root, path, what, plural),
    }
}

fn check_inside(root: &Path, dir: &Path, what: &str, plural: &str) -> Result<()> {
    let refuse = |why: String| {
        Error::InvalidInput(format!(
            "{what} {}: {why}; {plural} must be inside {} ({ROOT_VAR})",
            dir.display(),
            root.display()
        ))
    };
    let resolved = resolve(dir).map_err(refuse)?;
    if resolved.starts_with(root) {
        Ok(())
    } else {
        Err(refuse(format!("it resolves to {}, outside the store root", resolved.display())))
    }
}

/// `dir` absolute with symlinks and `..` resolved, for a path whose last parts may not exist yet.
fn resolve(dir: &Path) -> std::result::Result<PathBuf, String> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?.join(dir)
    };
    let parts: Vec<Component> = absolute.components().collect();
    // The deepest prefix that exists (a dangling symlink counts, and fails to resolve below).
    let mut existing = parts.len();
    while existing > 0 && parts[..existing].iter().collect::<PathBuf>().symlink_metadata().is_err() {
        existing -= 1;
    }
    let base: PathBuf = parts[..existing].iter().collect();
    let mut resolved = std::fs::canonicalize(&base).map_err(|e| format!("cannot resolve {}: {e}", base.display()))?;
    for part in &parts[existing..] {
        match part {
            Component::Normal(name) => resolved.push(name),
            Component::CurDir => {}
            _ => return Err(format!("'..' after {}, which does not exist, cannot be resolved", resolved.display())),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, with symlinks resolved.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("isovec-root-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    #[test]
    fn paths_inside_pass_and_escapes_are_refused() {
        let base = scratch("unit");
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(base.join("gone"), root.join("dangling")).unwrap();
        let check = |path: &Path| check_inside(&root, path, "store", "stores");
        for inside in ["st", "sub/st", "sub/../st", "new/deeper/st", "./st", "sub/./st"] {
            check(&root.join(inside)).unwrap_or_else(|e| panic!("{inside}: {e}"));
        }
        check(&root).unwrap();
        for escape in ["../outside/st", "sub/../../outside", "new/../../outside", "link/st", "link", "dangling/st"] {
            let e = check(&root.join(escape)).expect_err(escape).to_string();
            assert!(e.contains(ROOT_VAR), "{escape}: {e}");
        }
        // A sibling whose name starts like the root's is not inside it.
        std::fs::create_dir_all(base.join("rootless")).unwrap();
        assert!(check(&base.join("rootless/st")).is_err());
        let e = check_inside(&root, &outside.join("w.safetensors"), "transform file", "transform files").unwrap_err();
        assert!(e.to_string().starts_with("transform file "), "{e}");
        assert_eq!(resolve(&root.join("sub/../new/st")).unwrap(), root.join("new/st"));
        std::fs::remove_dir_all(base).unwrap();
    }
}
