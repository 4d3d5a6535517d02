//! The forget spec: which training samples to forget, as a short string.
//!
//! | spec | meaning |
//! |------|---------|
//! | `random:N` | N samples drawn uniformly without replacement from the training split |
//! | `random:P%` | ⌊P × T / 100⌋ samples (T = size of the training split), 0 < P ≤ 100 |
//! | `class:K` | every training-split sample of class K |
//! | `classes:K1,K2,…` | every training-split sample of these classes (deduplicated, sorted) |
//! | `indices:FILE` | exactly the positions listed in FILE (see [`parse_indices`]) |
//! | `fingerprints:FILE` | the samples whose content fingerprints FILE lists (a deletion request) |
//! | `ids:FILE` | the samples of the external IDs FILE lists, through a metadata table |
//! | `files:PATH` | the samples equal to these image files (a directory, or a list of paths) |
//! | `none` | an empty forget set (to train an original model) |
//!
//! The three request kinds name data by content, not by position, so they must be
//! *resolved* against the dataset before planning (see [`crate::fingerprint`] and
//! [`crate::plan_split_request`]); [`crate::plan_split`] refuses them.
//!
//! The training split is the full training set minus the validation split. Surrounding
//! whitespace is ignored; kinds are lower case. A bare number without `%` is a count, so
//! `random:0.1` is an error rather than a guess.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::SplitError;

/// A parsed forget spec (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub enum ForgetSpec {
    /// `none`: forget nothing.
    None,
    /// `random:N`.
    RandomCount(u64),
    /// `random:P%`, with P in (0, 100].
    RandomPercent(f64),
    /// `class:K`.
    Class(i64),
    /// `classes:K1,K2,…`, sorted and deduplicated.
    Classes(Vec<i64>),
    /// `indices:FILE`.
    Indices(PathBuf),
    /// `fingerprints:FILE`, `ids:FILE` or `files:PATH`: a deletion request by content,
    /// resolved to positions by the caller.
    Request(RequestKind, String),
}

/// The kind of a deletion request (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `fingerprints:FILE`: sample fingerprints, one per line.
    Fingerprints,
    /// `ids:FILE`: external IDs, one per line, looked up in a metadata table.
    Ids,
    /// `files:PATH`: image files, hashed like the dataset's samples.
    Files,
}

impl RequestKind {
    /// `"fingerprints"`, `"ids"` or `"files"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fingerprints => "fingerprints",
            Self::Ids => "ids",
            Self::Files => "files",
        }
    }
}

const EXPECT_RANDOM: &str =
    "a sample count (random:4500) or a percentage of the training split (random:10%)";
const EXPECT_CLASS: &str = "one class number (class:3; use classes:3,5 for several)";
const EXPECT_CLASSES: &str = "a comma-separated list of class numbers (classes:3,5)";
const EXPECT_INDICES: &str = "a file path (indices:forget.txt)";
const EXPECT_REQUEST: &str = "a file path (fingerprints:request.txt, ids:users.txt, files:images/)";
const EXPECT_NONE: &str = "'none' without a value";

fn malformed(spec: &str, expected: &'static str, got: &str) -> SplitError {
    SplitError::MalformedSpec {
        spec: spec.to_owned(),
        expected,
        got: got.to_owned(),
    }
}

fn parse_class(spec: &str, text: &str, expected: &'static str) -> Result<i64, SplitError> {
    let t = text.trim();
    t.parse::<i64>().map_err(|_| malformed(spec, expected, t))
}

impl ForgetSpec {
    /// Parses a spec string.
    ///
    /// # Errors
    /// [`SplitError::UnknownSpecKind`], [`SplitError::MalformedSpec`] or
    /// [`SplitError::FractionOutOfRange`], each naming the spec.
    pub fn parse(text: &str) -> Result<Self, SplitError> {
        let spec = text.trim();
        let (kind, value) = match spec.split_once(':') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (spec, None),
        };
        match (kind, value) {
            ("none", None) => Ok(Self::None),
            ("none", Some(v)) => Err(malformed(spec, EXPECT_NONE, v)),
            ("random", Some(v)) => {
                let v = v.trim();
                if let Some(p) = v.strip_suffix('%') {
                    let p_trim = p.trim();
                    let ok_chars = !p_trim.is_empty()
                        && p_trim
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+');
                    let percent = if ok_chars {
                        p_trim.parse::<f64>().ok()
                    } else {
                        None
                    }
                    .ok_or_else(|| malformed(spec, EXPECT_RANDOM, v))?;
                    if !(percent > 0.0 && percent <= 100.0) {
                        return Err(SplitError::FractionOutOfRange {
                            spec: spec.to_owned(),
                            percent,
                        });
                    }
                    Ok(Self::RandomPercent(percent))
                } else {
                    v.parse::<u64>()
                        .map(Self::RandomCount)
                        .map_err(|_| malformed(spec, EXPECT_RANDOM, v))
                }
            }
            ("class", Some(v)) => parse_class(spec, v, EXPECT_CLASS).map(Self::Class),
            ("classes", Some(v)) => {
                let mut classes = v
                    .split(',')
                    .map(|t| parse_class(spec, t, EXPECT_CLASSES))
                    .collect::<Result<Vec<_>, _>>()?;
                classes.sort_unstable();
                classes.dedup();
                Ok(Self::Classes(classes))
            }
            ("indices", Some(v)) => {
                let path = v.trim();
                if path.is_empty() {
                    return Err(malformed(spec, EXPECT_INDICES, v));
                }
                Ok(Self::Indices(PathBuf::from(path)))
            }
            (kind @ ("fingerprints" | "ids" | "files"), Some(v)) => {
                let source = v.trim();
                if source.is_empty() {
                    return Err(malformed(spec, EXPECT_REQUEST, v));
                }
                let kind = match kind {
                    "fingerprints" => RequestKind::Fingerprints,
                    "ids" => RequestKind::Ids,
                    _ => RequestKind::Files,
                };
                Ok(Self::Request(kind, source.to_owned()))
            }
            ("fingerprints" | "ids" | "files", None) => Err(malformed(spec, EXPECT_REQUEST, "")),
            ("random", None) => Err(malformed(spec, EXPECT_RANDOM, "")),
            ("class", None) => Err(malformed(spec, EXPECT_CLASS, "")),
            ("classes", None) => Err(malformed(spec, EXPECT_CLASSES, "")),
            ("indices", None) => Err(malformed(spec, EXPECT_INDICES, "")),
            (other, _) => Err(SplitError::UnknownSpecKind {
                spec: spec.to_owned(),
                kind: other.to_owned(),
            }),
        }
    }

    /// The classes the spec forgets entirely (`class`/`classes`), sorted; empty otherwise.
    #[must_use]
    pub fn classes(&self) -> &[i64] {
        match self {
            Self::Class(k) => std::slice::from_ref(k),
            Self::Classes(ks) => ks,
            _ => &[],
        }
    }

    /// The request kind and source of `fingerprints:`/`ids:`/`files:` specs.
    #[must_use]
    pub fn request(&self) -> Option<(RequestKind, &str)> {
        match self {
            Self::Request(kind, source) => Some((*kind, source)),
            _ => None,
        }
    }

    /// Whether this is `none`.
    #[must_use]
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}

impl FromStr for ForgetSpec {
    type Err = SplitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The canonical form: `none`, `random:4500`, `random:10%`, `class:3`, `classes:3,5`,
/// `indices:PATH`, `fingerprints:PATH`, `ids:PATH`, `files:PATH`. Parsing it gives the same
/// spec back.
impl fmt::Display for ForgetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::RandomCount(n) => write!(f, "random:{n}"),
            Self::RandomPercent(p) => write!(f, "random:{p}%"),
            Self::Class(k) => write!(f, "class:{k}"),
            Self::Classes(ks) => {
                f.write_str("classes:")?;
                for (i, k) in ks.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}")?;
                }
                Ok(())
            }
            Self::Indices(p) => write!(f, "indices:{}", p.display()),
            Self::Request(kind, source) => write!(f, "{}:{source}", kind.as_str()),
        }
    }
}

/// One position read from an `indices:` file, with its 1-based line number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedPosition {
    /// Position in the full training set.
    pub position: u64,
    /// 1-based line number in the file.
    pub line: usize,
}

/// Parses the text of an `indices:` file: integer positions in `[0, num_samples)` separated by
/// whitespace, commas or newlines; `#` starts a comment that runs to the end of the line.
/// Positions are returned in file order; duplicates are kept (the planner rejects them).
///
/// # Errors
/// [`SplitError::IndicesNonInteger`] or [`SplitError::IndicesOutOfRange`] with the line.
pub fn parse_indices(
    text: &str,
    path: &Path,
    num_samples: u64,
) -> Result<Vec<ListedPosition>, SplitError> {
    let mut out = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw_line.split_once('#').map_or(raw_line, |(c, _)| c);
        for token in content
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            let position = match token.parse::<u64>() {
                Ok(p) if p < num_samples => p,
                _ => {
                    let digits = token.strip_prefix(['-', '+']).unwrap_or(token);
                    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
                    return Err(if integer {
                        SplitError::IndicesOutOfRange {
                            path: path.to_owned(),
                            line,
                            token: token.to_owned(),
                            num_samples,
                        }
                    } else {
                        SplitError::IndicesNonInteger {
                            path: path.to_owned(),
                            line,
                            token: token.to_owned(),
                        }
                    });
                }
            };
            out.push(ListedPosition { position, line });
        }
    }
    Ok(out)
}

/// Reads and parses an `indices:` file (see [`parse_indices`]).
///
/// # Errors
/// [`SplitError::IndicesFileUnreadable`] with the path and OS error, or a parse error.
pub fn read_indices(path: &Path, num_samples: u64) -> Result<Vec<ListedPosition>, SplitError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| SplitError::IndicesFileUnreadable {
            path: path.to_owned(),
            source,
        })?;
    parse_indices(&text, path, num_samples)
}
