//! Rollback and freeze protection: a source must never take a mirror back to older metadata,
//! and a signed source that stopped changing is worth a warning.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::metadata::MetadataFile;
use crate::target::State;

use super::Mirror;

/// An `updated` field (RFC 2822, as simplestreams writes it; RFC 3339 accepted too).
pub(crate) fn parse_updated(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(v.trim())
        .or_else(|_| DateTime::parse_from_rfc3339(v.trim()))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

impl Mirror {
    /// Checks the `updated` of a file against the newest seen from its URL, and records it.
    pub(super) fn check_fresh(
        &self,
        state: &mut State,
        file: &MetadataFile,
        updated: Option<&Value>,
    ) -> Result<()> {
        let Some(text) = updated.and_then(Value::as_str) else {
            return Ok(());
        };
        let Some(now) = parse_updated(text) else {
            tracing::debug!("{}: updated {text:?} is not a date; not checked", file.url);
            return Ok(());
        };
        let freshness = self.options.freshness;
        if let Some(seen) = state.seen.get(&file.url) {
            if parse_updated(seen).is_some_and(|before| now < before) {
                if !freshness.allow_rollback {
                    return Err(Error::Rollback {
                        url: file.url.clone(),
                        seen: seen.clone(),
                        got: text.to_string(),
                    });
                }
                tracing::warn!(
                    "{}: updated {text}, older than {seen} seen before; accepted (--allow-rollback)",
                    file.url
                );
            }
        }
        if file.signer.is_some() {
            if let Some(limit) = freshness.stale_after {
                let age = Utc::now().signed_duration_since(now);
                if age.to_std().is_ok_and(|a| a > limit) {
                    tracing::warn!(
                        "{}: signed, but last updated {text}, {} days ago: the source may be \
                         frozen or no longer maintained",
                        file.url,
                        age.num_days()
                    );
                }
            }
        }
        let newer = state
            .seen
            .get(&file.url)
            .and_then(|s| parse_updated(s))
            .is_none_or(|b| now > b);
        if newer {
            state.seen.insert(file.url.clone(), text.to_string());
        }
        Ok(())
    }
}
