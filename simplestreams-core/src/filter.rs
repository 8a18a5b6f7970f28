//! Item filters: `KEY=VALUE`, `KEY!=VALUE`, `KEY~REGEX`, `KEY!~REGEX` (docs/format.md, "Filters").

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use crate::error::{Error, Result};
use crate::flatten::FlatItem;

/// How a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// `=`: exact string equality.
    Equals,
    /// `!=`: not equal.
    NotEquals,
    /// `~`: unanchored regex search.
    Matches,
    /// `!~`: no regex match.
    NotMatches,
}

/// One filter expression. A missing key compares as the empty string.
#[derive(Debug, Clone)]
pub struct Filter {
    key: String,
    op: FilterOp,
    value: String,
    regex: Option<Regex>,
}

impl Filter {
    /// Parses `KEY<op>VALUE`. Spaces around the operator are allowed; the value is the rest of
    /// the expression, trailing spaces included (as in the reference).
    pub fn parse(expression: &str) -> Result<Filter> {
        let bad = |message: &str| Error::Filter {
            expression: expression.to_string(),
            message: message.to_string(),
        };
        let key_end = expression
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .map(|(i, _)| i)
            .unwrap_or(expression.len());
        if key_end == 0 {
            return Err(bad("missing key"));
        }
        let key = &expression[..key_end];
        let rest = expression[key_end..].trim_start_matches(' ');
        let (op, rest) = if let Some(r) = rest.strip_prefix("!=") {
            (FilterOp::NotEquals, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (FilterOp::NotMatches, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (FilterOp::Equals, r)
        } else if let Some(r) = rest.strip_prefix('~') {
            (FilterOp::Matches, r)
        } else {
            return Err(bad("missing operator"));
        };
        let value = rest.trim_start_matches(' ');
        if value.contains('\n') {
            return Err(bad("value contains a newline"));
        }
        let regex = match op {
            FilterOp::Matches | FilterOp::NotMatches => {
                Some(Regex::new(value).map_err(|e| bad(&format!("invalid regex: {e}")))?)
            }
            _ => None,
        };
        Ok(Filter {
            key: key.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// The key compared.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn op(&self) -> FilterOp {
        self.op
    }

    /// The value (or regex source).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a value (the item's field, or `""` when missing) passes.
    pub fn matches_value(&self, value: &str) -> bool {
        match (&self.op, &self.regex) {
            (FilterOp::Equals, _) => value == self.value,
            (FilterOp::NotEquals, _) => value != self.value,
            (FilterOp::Matches, Some(re)) => re.is_match(value),
            (FilterOp::NotMatches, Some(re)) => !re.is_match(value),
            _ => false,
        }
    }

    /// Whether a flattened item passes. A value holding lone surrogates (a kept string, see
    /// [`crate::py_chars`]) is compared with U+FFFD in their place.
    pub fn matches(&self, item: &FlatItem<'_>) -> bool {
        let value = item.get(self.key.as_str()).map_or("", |v| v.as_ref());
        if crate::is_kept(value) {
            return self.matches_value(&crate::lossy_text(value));
        }
        self.matches_value(value)
    }
}

impl FromStr for Filter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Filter> {
        Filter::parse(s)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            FilterOp::Equals => "=",
            FilterOp::NotEquals => "!=",
            FilterOp::Matches => "~",
            FilterOp::NotMatches => "!~",
        };
        write!(f, "{}{}{}", self.key, op, self.value)
    }
}

/// Several filters combined with AND (an empty set passes everything).
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    filters: Vec<Filter>,
}

impl FilterSet {
    /// Parses every expression; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(expressions: &[S]) -> Result<FilterSet> {
        let filters = expressions
            .iter()
            .map(|e| Filter::parse(e.as_ref()))
            .collect::<Result<_>>()?;
        Ok(FilterSet { filters })
    }

    /// Builds a set from parsed filters.
    pub fn new(filters: Vec<Filter>) -> FilterSet {
        FilterSet { filters }
    }

    /// Whether every filter passes.
    pub fn matches(&self, item: &FlatItem<'_>) -> bool {
        self.filters.iter().all(|f| f.matches(item))
    }

    /// The filters.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// Whether there are no filters.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn item(pairs: &[(&'static str, &'static str)]) -> FlatItem<'static> {
        pairs.iter().map(|&(k, v)| (k, Cow::Borrowed(v))).collect()
    }

    #[test]
    fn parses_all_operators() {
        let f = Filter::parse("arch=amd64").unwrap();
        assert_eq!(
            (f.key(), f.op(), f.value()),
            ("arch", FilterOp::Equals, "amd64")
        );
        let f = Filter::parse("arch != amd64").unwrap();
        assert_eq!(
            (f.key(), f.op(), f.value()),
            ("arch", FilterOp::NotEquals, "amd64")
        );
        let f = Filter::parse("ftype~(disk1.img|disk.img)").unwrap();
        assert_eq!(f.op(), FilterOp::Matches);
        let f = Filter::parse("release!~^pre").unwrap();
        assert_eq!(f.op(), FilterOp::NotMatches);
        let f = Filter::parse("a=b=c ").unwrap();
        assert_eq!(f.value(), "b=c ");
    }

    #[test]
    fn rejects_garbage_with_syntax_hint() {
        for bad in ["", "=x", "arch", "arch>1", "x~(unclosed"] {
            let err = Filter::parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected KEY=VALUE"), "{bad}: {err}");
        }
    }

    #[test]
    fn missing_key_is_empty_string() {
        let it = item(&[("arch", "amd64")]);
        assert!(Filter::parse("release=").unwrap().matches(&it));
        assert!(Filter::parse("release!=xenial").unwrap().matches(&it));
        assert!(!Filter::parse("release~.").unwrap().matches(&it));
    }

    #[test]
    fn regex_is_unanchored_and_case_sensitive() {
        let it = item(&[("ftype", "disk1.img")]);
        assert!(Filter::parse("ftype~isk1").unwrap().matches(&it));
        assert!(!Filter::parse("ftype~DISK").unwrap().matches(&it));
        assert!(Filter::parse("ftype!~root").unwrap().matches(&it));
        let set = FilterSet::parse(&["ftype~disk", "arch=amd64"]).unwrap();
        assert!(!set.matches(&it));
    }
}
