//! Hostile: reads through a path whose symbolic link is swapped while it reads (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use std::collections::BTreeMap;

use exports::hostile::symlink_race::attack::{Guest, RaceReport};

/// The most bytes of one content kept.
const KEEP: usize = 256;

struct SymlinkRace;

impl Guest for SymlinkRace {
    fn read_file(path: String, rounds: u32) -> RaceReport {
        race(rounds, || {
            std::fs::read(&path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        })
    }

    fn list_dir(path: String, rounds: u32) -> RaceReport {
        race(rounds, || {
            let mut names = std::fs::read_dir(&path)?
                .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<Vec<_>, _>>()?;
            names.sort();
            Ok(names.join(","))
        })
    }
}

export!(SymlinkRace);

fn race(rounds: u32, mut read: impl FnMut() -> std::io::Result<String>) -> RaceReport {
    let mut contents: BTreeMap<String, u32> = BTreeMap::new();
    let mut errors: BTreeMap<String, u32> = BTreeMap::new();
    let (mut reads, mut failures) = (0, 0);
    for _ in 0..rounds {
        match read() {
            Ok(mut content) => {
                reads += 1;
                if content.len() > KEEP {
                    let mut cut = KEEP;
                    while !content.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    content.truncate(cut);
                }
                *contents.entry(content).or_default() += 1;
            }
            Err(error) => {
                failures += 1;
                *errors.entry(error.to_string()).or_default() += 1;
            }
        }
    }
    RaceReport {
        reads,
        failures,
        contents: contents.into_iter().collect(),
        errors: errors.into_iter().collect(),
    }
}
