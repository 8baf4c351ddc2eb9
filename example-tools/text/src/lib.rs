//! The `text` tool: word counts, URL slugs and regular-expression search (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "text-tool" });

use exports::example::text::text::{Counts, Found, Guest};
use regex::Regex;

struct Text;

impl Guest for Text {
    fn word_count(text: String) -> Counts {
        count(&text)
    }

    fn slugify(text: String, separator: Option<String>) -> String {
        slugify(&text, separator.as_deref().unwrap_or("-"))
    }

    fn find(pattern: String, text: String, limit: Option<u32>) -> Result<Vec<Found>, String> {
        find(
            &pattern,
            &text,
            limit.map_or(usize::MAX, |limit| limit as usize),
        )
    }

    fn replace(pattern: String, text: String, replacement: String) -> Result<String, String> {
        Ok(compile(&pattern)?
            .replace_all(&text, replacement.as_str())
            .into_owned())
    }
}

export!(Text);

fn count(text: &str) -> Counts {
    Counts {
        words: text.split_whitespace().count() as u64,
        lines: text.lines().count() as u64,
        chars: text.chars().count() as u64,
        bytes: text.len() as u64,
    }
}

fn slugify(text: &str, separator: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut pending_separator = false;
    for c in text.chars() {
        let c = fold_accent(c).to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            if pending_separator && !slug.is_empty() {
                slug.push_str(separator);
            }
            pending_separator = false;
            slug.push(c);
        } else if c != '\'' && c != '’' {
            // Apostrophes join (`don't` → `dont`); everything else separates.
            pending_separator = true;
        }
    }
    slug
}

/// The unaccented ASCII letter for common accented Latin letters; other characters unchanged.
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => 'a',
        'ç' | 'ć' | 'č' | 'Ç' | 'Ć' | 'Č' => 'c',
        'ď' | 'đ' | 'Ď' | 'Đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' | 'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => {
            'e'
        }
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => 'i',
        'ł' | 'Ł' | 'ľ' | 'Ľ' => 'l',
        'ñ' | 'ń' | 'ň' | 'Ñ' | 'Ń' | 'Ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō'
        | 'Ő' => 'o',
        'ř' | 'Ř' => 'r',
        'ś' | 'š' | 'ş' | 'Ś' | 'Š' | 'Ş' | 'ß' => 's',
        'ť' | 'ţ' | 'Ť' | 'Ţ' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű' => {
            'u'
        }
        'ý' | 'ÿ' | 'Ý' | 'Ÿ' => 'y',
        'ź' | 'ż' | 'ž' | 'Ź' | 'Ż' | 'Ž' => 'z',
        other => other,
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|error| format!("invalid pattern `{pattern}`: {error}"))
}

fn find(pattern: &str, text: &str, limit: usize) -> Result<Vec<Found>, String> {
    let regex = compile(pattern)?;
    let found = regex
        .captures_iter(text)
        .take(limit)
        .map(|captures| {
            let whole = captures.get(0).expect("group 0 is the whole match");
            Found {
                start: whole.start() as u32,
                end: whole.end() as u32,
                text: whole.as_str().to_owned(),
                groups: captures
                    .iter()
                    .skip(1)
                    .map(|group| group.map(|group| group.as_str().to_owned()))
                    .collect(),
            }
        })
        .collect();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_everything() {
        let counts = count("héllo world\nsecond line\n");
        assert_eq!(
            (counts.words, counts.lines, counts.chars, counts.bytes),
            (4, 2, 24, 25)
        );
        let empty = count("");
        assert_eq!(
            (empty.words, empty.lines, empty.chars, empty.bytes),
            (0, 0, 0, 0)
        );
        assert_eq!(count("no newline").lines, 1);
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Hello, World!", "-"), "hello-world");
        assert_eq!(
            slugify("  Crème brûlée — déjà vu  ", "-"),
            "creme-brulee-deja-vu"
        );
        assert_eq!(slugify("Don't panic", "_"), "dont_panic");
        assert_eq!(slugify("日本語", "-"), "");
        assert_eq!(slugify("v1.2.3", "-"), "v1-2-3");
    }

    #[test]
    fn finds_with_offsets_and_groups() {
        let found = find(r"(\w+)@(\w+)?\.com", "a@b.com, c@.com", usize::MAX).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].start, found[0].end, found[0].text.as_str()),
            (0, 7, "a@b.com")
        );
        assert_eq!(
            found[0].groups,
            vec![Some("a".to_owned()), Some("b".to_owned())]
        );
        assert_eq!(found[1].groups, vec![Some("c".to_owned()), None]);
        assert_eq!(find("a", "aaaa", 3).unwrap().len(), 3);
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        let error = find("(unclosed", "text", usize::MAX).unwrap_err();
        assert!(error.starts_with("invalid pattern `(unclosed`"), "{error}");
    }
}
