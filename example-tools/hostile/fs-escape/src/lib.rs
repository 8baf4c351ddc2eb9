//! Hostile: tries every way out of its granted directories (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::fs;

use are_guest_sdk::wasip2::filesystem::preopens::get_directories;
use are_guest_sdk::wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags,
};
use exports::hostile::fs_escape::attack::{Attempt, Guest, Planted};

/// The most bytes of a file kept in an attempt's outcome.
const KEEP: usize = 4096;

/// Enough `..` to leave any directory tree.
const CLIMB: &str = "../../../../../../../../../..";

/// Host paths worth stealing.
const TARGETS: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/hostname",
    "/proc/self/environ",
    "/proc/self/cmdline",
    "/root/.ssh/id_rsa",
    "/root/.ssh/id_ed25519",
    "/root/.aws/credentials",
    "/root/.config/gcloud/credentials.db",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
];

/// Host directories worth listing.
const DIRECTORIES: &[&str] = &["/", "/etc", "/home", "/root", "/tmp"];

struct FsEscape;

impl Guest for FsEscape {
    fn preopens() -> Vec<String> {
        get_directories()
            .into_iter()
            .map(|(_, path)| path)
            .collect()
    }

    fn dot_dot() -> Vec<Attempt> {
        let mut attempts = vec![
            std_read(&format!("{CLIMB}/etc/passwd")),
            std_read("../etc/passwd"),
            std_list(".."),
            std_list(CLIMB),
        ];
        for (descriptor, root) in get_directories() {
            let root = root.trim_end_matches('/');
            attempts.push(std_read(&format!("{root}/{CLIMB}/etc/passwd")));
            attempts.push(std_read(&format!("{root}/../etc/passwd")));
            attempts.push(std_list(&format!("{root}/..")));
            attempts.push(std_list(&format!("{root}/{CLIMB}")));
            for path in [
                format!("{CLIMB}/etc/passwd"),
                "../etc/passwd".to_owned(),
                "./../etc/passwd".to_owned(),
            ] {
                attempts.push(raw_read(&descriptor, root, &path));
            }
            attempts.push(raw_list(&descriptor, root, ".."));
            attempts.push(raw_list(&descriptor, root, CLIMB));
            attempts.push(raw_stat(&descriptor, root, ".."));
            attempts.push(raw_stat(&descriptor, root, &format!("{CLIMB}/etc/passwd")));
            // Climb from a subdirectory that may not exist, in case only the first component is checked.
            attempts.push(raw_read(
                &descriptor,
                root,
                &format!("sub/{CLIMB}/etc/passwd"),
            ));
        }
        attempts
    }

    fn absolute() -> Vec<Attempt> {
        let mut attempts: Vec<Attempt> = TARGETS.iter().map(|path| std_read(path)).collect();
        attempts.extend(DIRECTORIES.iter().map(|path| std_list(path)));
        for (descriptor, root) in get_directories() {
            for path in TARGETS {
                attempts.push(raw_read(&descriptor, &root, path));
            }
            attempts.push(raw_list(&descriptor, &root, "/"));
        }
        attempts
    }

    fn follow_symlink(path: String) -> Vec<Attempt> {
        let mut attempts = vec![
            std_read(&path),
            std_list(&path),
            std_read(&format!("{path}/passwd")),
        ];
        if let Some((descriptor, root, relative)) = descriptor_for(&path) {
            attempts.push(raw_read(&descriptor, &root, &relative));
            attempts.push(raw_list(&descriptor, &root, &relative));
        }
        attempts
    }

    fn plant_symlink(dir: String, target: String) -> Planted {
        let dir = dir.trim_end_matches('/').to_owned();
        let link = format!("{dir}/escape-link");
        let hard = format!("{dir}/escape-hard");
        let Some((descriptor, root, relative_dir)) = descriptor_for(&dir) else {
            return Planted {
                created: Err(format!("`{dir}` is not inside a granted directory")),
                reads: Vec::new(),
            };
        };
        let in_dir = |name: &str| {
            if relative_dir == "." {
                name.to_owned()
            } else {
                format!("{relative_dir}/{name}")
            }
        };

        // A link left by an earlier run would make creation fail; it is ours to replace.
        let _ = descriptor.unlink_file_at(&in_dir("escape-link"));
        let _ = descriptor.unlink_file_at(&in_dir("escape-hard"));
        let created = descriptor
            .symlink_at(&target, &in_dir("escape-link"))
            .map(|()| link.clone())
            .map_err(|error| format!("symlink-at `{link}` -> `{target}`: {}", code(&error)));

        let mut reads = vec![
            std_read(&link),
            std_list(&link),
            std_read(&format!("{link}/passwd")),
        ];
        reads.push(raw_read(&descriptor, &root, &in_dir("escape-link")));
        reads.push(raw_list(&descriptor, &root, &in_dir("escape-link")));

        let linked = descriptor.link_at(
            PathFlags::SYMLINK_FOLLOW,
            &target,
            &descriptor,
            &in_dir("escape-hard"),
        );
        match linked {
            Ok(()) => {
                reads.push(std_read(&hard));
                reads.push(raw_read(&descriptor, &root, &in_dir("escape-hard")));
            }
            Err(error) => reads.push(Attempt {
                technique: format!("hard link `{hard}` -> `{target}`"),
                path: target.clone(),
                outcome: Err(code(&error)),
            }),
        }
        // Leave the granted directory as it was.
        let _ = descriptor.unlink_file_at(&in_dir("escape-link"));
        let _ = descriptor.unlink_file_at(&in_dir("escape-hard"));
        Planted { created, reads }
    }
}

export!(FsEscape);

/// The `wasi:filesystem` name of an error, such as `not-permitted`.
fn code(error: &ErrorCode) -> String {
    error.name().to_owned()
}

fn keep(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(KEEP)]).into_owned()
}

fn std_read(path: &str) -> Attempt {
    Attempt {
        technique: "std read".to_owned(),
        path: path.to_owned(),
        outcome: fs::read(path)
            .map(|bytes| keep(&bytes))
            .map_err(|error| error.to_string()),
    }
}

fn std_list(path: &str) -> Attempt {
    let outcome = fs::read_dir(path)
        .map_err(|error| error.to_string())
        .and_then(|entries| {
            let names: Result<Vec<String>, String> = entries
                .map(|entry| {
                    entry
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .map_err(|e| e.to_string())
                })
                .collect();
            names.map(|names| names.join("\n"))
        });
    Attempt {
        technique: "std list".to_owned(),
        path: path.to_owned(),
        outcome,
    }
}

fn raw_read(descriptor: &Descriptor, root: &str, path: &str) -> Attempt {
    let outcome = descriptor
        .open_at(
            PathFlags::SYMLINK_FOLLOW,
            path,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .and_then(|file| file.read(KEEP as u64, 0))
        .map(|(bytes, _)| keep(&bytes))
        .map_err(|error| code(&error));
    Attempt {
        technique: format!("open-at from `{root}`"),
        path: path.to_owned(),
        outcome,
    }
}

fn raw_list(descriptor: &Descriptor, root: &str, path: &str) -> Attempt {
    let outcome = descriptor
        .open_at(
            PathFlags::SYMLINK_FOLLOW,
            path,
            OpenFlags::DIRECTORY,
            DescriptorFlags::READ,
        )
        .and_then(|dir| {
            let entries = dir.read_directory()?;
            let mut names = Vec::new();
            while let Some(entry) = entries.read_directory_entry()? {
                names.push(entry.name);
            }
            Ok(names.join("\n"))
        })
        .map_err(|error| code(&error));
    Attempt {
        technique: format!("open-at directory from `{root}`"),
        path: path.to_owned(),
        outcome,
    }
}

fn raw_stat(descriptor: &Descriptor, root: &str, path: &str) -> Attempt {
    let outcome = descriptor
        .stat_at(PathFlags::SYMLINK_FOLLOW, path)
        .map(|stat| format!("{:?}, {} bytes", stat.type_, stat.size))
        .map_err(|error| code(&error));
    Attempt {
        technique: format!("stat-at from `{root}`"),
        path: path.to_owned(),
        outcome,
    }
}

/// The granted directory holding `path`, its guest path, and `path` relative to it.
fn descriptor_for(path: &str) -> Option<(Descriptor, String, String)> {
    get_directories()
        .into_iter()
        .find_map(|(descriptor, root)| {
            let base = root.trim_end_matches('/');
            let rest = path.strip_prefix(base)?;
            let relative = match rest.trim_start_matches('/') {
                "" => ".".to_owned(),
                relative if rest.starts_with('/') || base.is_empty() => relative.to_owned(),
                _ => return None,
            };
            Some((descriptor, root, relative))
        })
}
