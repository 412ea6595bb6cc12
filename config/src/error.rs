//! Errors that tell the administrator where to look: file, line and key.

use std::fmt;
use std::path::PathBuf;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line, when the problem can be pinned to one.
    pub line: Option<usize>,
    /// Dotted key path such as `lockout.window` or `radius.clients[0].secret`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything wrong with a configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn single(problem: Problem) -> Self {
        Self {
            problems: vec![problem],
        }
    }

    pub(crate) fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::single(Problem {
            file: file.into(),
            line: None,
            key: None,
            message: message.into(),
        })
    }
}

impl ConfigError {
    /// A problem a program finds with a setting of a file that loaded (a setting it cannot
    /// use, where another program can): the file, the dotted key and, where the file still
    /// reads, its line.
    pub fn at_key(file: &std::path::Path, key: &[&str], message: impl Into<String>) -> Self {
        let path: Vec<crate::Seg> = key.iter().map(|k| crate::Seg::Key((*k).into())).collect();
        let line = crate::read_text(file)
            .ok()
            .and_then(|text| crate::line_of_path(&text, &path));
        Self::single(Problem {
            file: file.into(),
            line,
            key: Some(key.join(".")),
            message: message.into(),
        })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
