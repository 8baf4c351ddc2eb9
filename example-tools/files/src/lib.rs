//! The `files` tool: list, read and write files in the granted directories (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "files-tool" });

use std::fs;
use std::io::{self, ErrorKind};
use std::path::Path;
use std::time::UNIX_EPOCH;

use exports::example::files::files::{Entry, EntryKind, FsError, Guest};

/// `ENOTCAPABLE` in wasi-libc: the path is outside every directory the host granted.
#[cfg(target_os = "wasi")]
const ENOTCAPABLE: i32 = 76;

struct Files;

impl Guest for Files {
    fn list(path: String) -> Result<Vec<Entry>, FsError> {
        list(&path).map_err(|error| fs_error(&path, &error))
    }

    fn read(path: String) -> Result<String, FsError> {
        fs::read_to_string(&path).map_err(|error| fs_error(&path, &error))
    }

    fn write(path: String, contents: String, create_dirs: Option<bool>) -> Result<u64, FsError> {
        if create_dirs.unwrap_or(false)
            && let Some(parent) = Path::new(&path)
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
        {
            let parent_text = parent.to_string_lossy().into_owned();
            fs::create_dir_all(parent).map_err(|error| fs_error(&parent_text, &error))?;
        }
        fs::write(&path, contents.as_bytes()).map_err(|error| fs_error(&path, &error))?;
        Ok(contents.len() as u64)
    }
}

export!(Files);

fn list(path: &str) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        // `symlink_metadata` describes a link itself, never where it points.
        let metadata = fs::symlink_metadata(entry.path())?;
        let file_type = metadata.file_type();
        let kind = if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok());
        entries.push(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            size: metadata.len(),
            kind,
            modified: modified.map(|since| since.as_secs()),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn fs_error(path: &str, error: &io::Error) -> FsError {
    #[cfg(target_os = "wasi")]
    if error.raw_os_error() == Some(ENOTCAPABLE)
        || (error.kind() == ErrorKind::NotFound && outside_grants(path))
    {
        let granted: Vec<String> = are_guest_sdk::wasip2::filesystem::preopens::get_directories()
            .into_iter()
            .map(|(_, dir)| dir)
            .collect();
        let granted = if granted.is_empty() {
            "none".to_owned()
        } else {
            granted.join(", ")
        };
        return FsError::PermissionDenied(format!(
            "`{path}` is outside the directories this tool was granted (granted: {granted})"
        ));
    }
    match error.kind() {
        ErrorKind::NotFound => FsError::NotFound(format!("`{path}` does not exist")),
        ErrorKind::PermissionDenied => FsError::PermissionDenied(format!("`{path}`: {error}")),
        ErrorKind::InvalidData => FsError::Other(format!("`{path}` is not UTF-8 text")),
        _ => FsError::Other(format!("`{path}`: {error}")),
    }
}

/// Whether an absolute `path` lies under none of the granted directories. wasi-libc reports such paths as
/// missing, which would tell the caller the wrong thing.
#[cfg(target_os = "wasi")]
fn outside_grants(path: &str) -> bool {
    path.starts_with('/')
        && !are_guest_sdk::wasip2::filesystem::preopens::get_directories()
            .iter()
            .any(|(_, dir)| {
                let dir = dir.trim_end_matches('/');
                path == dir
                    || path
                        .strip_prefix(dir)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("files-tool-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn join(&self, name: &str) -> String {
            self.0.join(name).to_str().unwrap().to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_reads_and_lists() {
        let dir = TempDir::new("rw");
        let nested = dir.join("a/b/note.txt");
        assert!(matches!(
            Files::write(nested.clone(), "x".to_owned(), None),
            Err(FsError::NotFound(_))
        ));
        assert_eq!(
            Files::write(nested.clone(), "héllo".to_owned(), Some(true)).unwrap(),
            6
        );
        assert_eq!(Files::read(nested).unwrap(), "héllo");

        fs::write(dir.join("z.bin"), [0xff, 0xfe]).unwrap();
        let entries = Files::list(dir.join("")).unwrap();
        let summary: Vec<_> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.size))
            .collect();
        assert_eq!(summary[0].0, "a");
        assert_eq!(summary[0].1, EntryKind::Dir);
        assert_eq!(
            (summary[1].0, summary[1].1, summary[1].2),
            ("z.bin", EntryKind::File, 2)
        );
        assert!(entries[1].modified.is_some());

        match Files::read(dir.join("z.bin")) {
            Err(FsError::Other(message)) => {
                assert!(message.ends_with("is not UTF-8 text"), "{message}")
            }
            other => panic!("expected a UTF-8 error, got {other:?}"),
        }
    }

    #[test]
    fn missing_paths_are_not_found() {
        let dir = TempDir::new("missing");
        match Files::read(dir.join("nope")) {
            Err(FsError::NotFound(message)) => assert!(message.contains("nope"), "{message}"),
            other => panic!("expected not-found, got {other:?}"),
        }
        assert!(matches!(
            Files::list(dir.join("nope")),
            Err(FsError::NotFound(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_listed_not_followed() {
        let dir = TempDir::new("links");
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).unwrap();
        let entries = Files::list(dir.join("")).unwrap();
        assert_eq!(entries[0].kind, EntryKind::Symlink);
        assert_eq!(entries[0].size, "/etc/hostname".len() as u64);
    }
}
