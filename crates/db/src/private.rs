//! Files only for their owner: the data directory bazaar creates is 0700 and the SQLite files
//! in it 0600 whatever the umask, because `users.db` holds password hashes and refresh tokens.

use std::io;
use std::path::Path;

/// Creates `dir` (and missing parents) readable by the owner only. A directory that already
/// exists is left as it is: it may be shared, such as `/tmp`, and is the operator's choice.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    // The mode given at creation is narrowed by the umask; set it exactly.
    set_mode(dir, 0o700)
}

/// Makes sure `path` exists and only its owner can read or write it (tightening a file an
/// earlier version left world-readable). SQLite gives its -wal and -shm files the mode of
/// the database file, so they follow.
pub fn private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    set_mode(path, 0o600)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}
