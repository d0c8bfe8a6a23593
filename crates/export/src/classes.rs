//! Program classes: which process versions are editors, archivers, shells…
//!
//! PROV has no notion of "an editor"; an analyst still wants to ask for one
//! (`?activity a tomo:Editor`). Every activity gets the class of its own
//! program (`tomoprog:vi`) and the classes a small table gives that program
//! (`classes.txt`, overridable with a file of the same syntax).

use std::collections::HashMap;

/// The built-in table (`CLASS: PROGRAM ...` lines).
pub const DEFAULT_CLASSES: &str = include_str!("classes.txt");

/// A line of a class file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ClassesError {
    pub line: usize,
    pub msg: String,
}

/// Program (basename) → class names (local names in the `tomo:` namespace).
#[derive(Clone, Debug)]
pub struct ProgramClasses {
    map: HashMap<String, Vec<String>>,
}

impl Default for ProgramClasses {
    fn default() -> Self {
        // The built-in table is tested to parse (see the tests below).
        ProgramClasses::parse(DEFAULT_CLASSES).unwrap_or_else(|_| ProgramClasses::empty())
    }
}

fn valid_class(c: &str) -> bool {
    let mut chars = c.chars();
    chars.next().is_some_and(|f| f.is_ascii_alphabetic())
        && chars.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl ProgramClasses {
    /// No classes at all (activities still get their `tomoprog:` class).
    pub fn empty() -> ProgramClasses {
        ProgramClasses {
            map: HashMap::new(),
        }
    }

    /// Parse a table of `CLASS: PROGRAM ...` lines.
    pub fn parse(text: &str) -> Result<ProgramClasses, ClassesError> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |msg: String| ClassesError { line: i + 1, msg };
            let (class, progs) = line
                .split_once(':')
                .ok_or_else(|| err(format!("expected `CLASS: PROGRAM ...`, found {line:?}")))?;
            let class = class.trim();
            if class != "none" && !valid_class(class) {
                return Err(err(format!(
                    "{class:?} is not a class name (a letter, then letters, digits or _)"
                )));
            }
            for p in progs.split_whitespace() {
                let v = map.entry(p.to_string()).or_default();
                if class != "none" && !v.iter().any(|c| c == class) {
                    v.push(class.to_string());
                }
            }
        }
        Ok(ProgramClasses { map })
    }

    /// The built-in table with the programs of `text` reclassified: a
    /// program the file names gets exactly the file's classes.
    pub fn with_overrides(text: &str) -> Result<ProgramClasses, ClassesError> {
        let mut base = ProgramClasses::default();
        let over = ProgramClasses::parse(text)?;
        base.map.extend(over.map);
        Ok(base)
    }

    /// The classes of `program` (a basename), in table order.
    pub fn of(&self, program: &str) -> &[String] {
        self.map.get(program).map_or(&[], Vec::as_slice)
    }
}

/// `name` as the local part of a prefixed name that Turtle, PROV-N and
/// SPARQL all accept unescaped: letters, digits and `_` stay, `-` and `.`
/// stay inside the name, every other byte is percent-encoded (so `c++` is
/// `tomoprog:c%2B%2B`). Empty names become `_`.
pub fn local_name(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = String::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        let inner = i > 0 && i + 1 < b.len();
        if c.is_ascii_alphanumeric() || c == b'_' || (inner && (c == b'-' || c == b'.')) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_parses() {
        let c = ProgramClasses::parse(DEFAULT_CLASSES).unwrap();
        assert_eq!(c.of("vi"), ["Editor"]);
        assert_eq!(c.of("tar"), ["Archiver"]);
        assert!(c.of("no-such-program").is_empty());
        assert_eq!(ProgramClasses::default().of("nano"), ["Editor"]);
    }

    #[test]
    fn overrides_replace_a_programs_classes() {
        let c = ProgramClasses::with_overrides("# mine\nViewer: vi less\nnone: tar\n").unwrap();
        assert_eq!(c.of("vi"), ["Viewer"]);
        assert_eq!(c.of("less"), ["Viewer"]);
        assert!(c.of("tar").is_empty());
        assert_eq!(c.of("nano"), ["Editor"], "untouched programs keep theirs");
        let e = ProgramClasses::parse("ok: a\nbad class: b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(ProgramClasses::parse("just words").is_err());
    }

    #[test]
    fn local_names_are_safe() {
        assert_eq!(local_name("vi"), "vi");
        assert_eq!(local_name("vim.basic"), "vim.basic");
        assert_eq!(local_name("c++"), "c%2B%2B");
        assert_eq!(local_name(".x-"), "%2Ex%2D");
        assert_eq!(local_name("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(local_name(""), "_");
    }
}
