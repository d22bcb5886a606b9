//! Files only the server's user may read: the data dir (created 0700) and secrets generated into it
//! (created 0600).
//!
//! A generated secret is written to a temporary file, flushed to disk, then hard-linked into place,
//! which never replaces an existing file: of several processes starting at once exactly one secret
//! wins and every process ends up using it, and a crash can leave at most a stray temporary file,
//! never a half-written secret under the real name. Nothing here logs or formats a secret.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Creates `path` and any missing parents with mode 0700 (on Unix). An existing directory is left
/// as it is: its permissions are the operator's choice.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Makes sure `path` exists and only its owner may read or write it (0600): created empty if
/// missing, tightened if an older version created it wider. For the SQLite database, whose WAL and
/// shared-memory files SQLite creates with the database file's own permissions.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    #[cfg(unix)]
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// How often a lost race (another process linked its secret first) is retried before giving up.
const ATTEMPTS: usize = 5;

/// The secret kept in `path`, generated with `generate` (and stored with mode 0600) when the file
/// does not exist. A file whose trimmed content is shorter than `min_len` can only be the remains
/// of an interrupted first start (this function never writes one), so it is replaced rather than
/// refused.
pub fn read_or_generate(path: &Path, min_len: usize, generate: impl Fn() -> String) -> io::Result<String> {
    for _ in 0..ATTEMPTS {
        match fs::read_to_string(path) {
            Ok(existing) if existing.trim().len() >= min_len => return Ok(existing.trim().to_string()),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "generated secret file is empty or truncated; generating a new one");
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        create_private_dir(dir)?;
        let secret = generate();
        if secret.trim().len() < min_len || secret.trim() != secret {
            return Err(io::Error::other("generated secret is too short or has surrounding whitespace"));
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{file_name}.{}.{}.tmp", std::process::id(), crate::ids::new_id()));
        let linked = write_private(&temp, secret.as_bytes()).and_then(|()| fs::hard_link(&temp, path));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                sync_dir(dir);
                return Ok(secret);
            }
            // Another process linked its secret first: read and use that one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("{} keeps changing while it is being created", path.display())))
}

/// Writes a new file with mode 0600 and flushes it to disk.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes the new directory entry durable (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_secret() -> String {
        crate::stream_key::random_hex(32)
    }

    #[test]
    fn generated_once_then_read_back_with_private_modes() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a").join("data");
        let path = dir.join("secret");
        let first = read_or_generate(&path, 32, hex_secret).expect("generated");
        let second = read_or_generate(&path, 32, || unreachable!("an existing secret is not regenerated")).expect("read");
        assert_eq!(first, second);
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 1, "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
            assert_eq!(fs::metadata(&dir).expect("dir").permissions().mode() & 0o777, 0o700);
            assert_eq!(fs::metadata(root.path().join("a")).expect("parent").permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn an_empty_or_truncated_file_from_a_crash_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        for leftover in ["", "abc\n"] {
            fs::write(&path, leftover).expect("leftover");
            let secret = read_or_generate(&path, 32, hex_secret).expect("regenerated");
            assert_eq!(secret.len(), 64);
            assert_eq!(fs::read_to_string(&path).expect("file"), secret);
        }
    }

    #[test]
    fn racing_starts_all_use_the_one_secret_that_won() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        let barrier = std::sync::Barrier::new(8);
        let secrets: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        read_or_generate(&path, 32, hex_secret).expect("secret")
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let on_disk = fs::read_to_string(&path).expect("file");
        assert!(secrets.iter().all(|s| *s == on_disk), "{secrets:?} vs {on_disk}");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1, "no temporary files are left behind");
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o750)).expect("chmod");
            create_private_dir(dir.path()).expect("exists already");
            assert_eq!(fs::metadata(dir.path()).expect("dir").permissions().mode() & 0o777, 0o750);
        }
        #[cfg(not(unix))]
        create_private_dir(dir.path()).expect("exists already");
    }
}
