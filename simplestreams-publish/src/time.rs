//! Dates as simplestreams writes them.

/// Now as RFC 2822 in UTC, as the reference writes `updated`: `Thu, 24 Jul 2025 08:01:48 +0000`.
pub fn rfc2822_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// The UTC date of `time` as a version name, `YYYYMMDD`.
pub(crate) fn version_date(time: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%Y%m%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn updated_is_rfc_2822() {
        let now = super::rfc2822_now();
        assert!(chrono::DateTime::parse_from_rfc2822(&now).is_ok(), "{now}");
        assert!(now.ends_with(" +0000"));
        let epoch = std::time::UNIX_EPOCH + std::time::Duration::from_secs(86_400 * 365);
        assert_eq!(super::version_date(epoch), "19710101");
    }
}
