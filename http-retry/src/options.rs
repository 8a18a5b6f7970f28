//! Client settings, and the one place a `reqwest::Client` is built.

use std::time::Duration;

use crate::RetryConfig;

/// Settings of an HTTP client.
///
/// Defaults: connect timeout 10 s, read timeout 60 s (the longest silence allowed while waiting
/// for an answer or between two chunks of a body), retries as [`RetryConfig::default`], the
/// user agent `simplestreams-rs/VERSION`, the system's and the bundled root certificates.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed between two reads.
    pub read_timeout: Duration,
    /// Retry policy.
    pub retry: RetryConfig,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Extra trusted CA certificates (PEM bundles, such as the charm's `ssl_ca`).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Accept any server certificate (`OS_INSECURE`, `--insecure`): for test clouds only.
    pub accept_invalid_certs: bool,
    /// Keep idle connections for reuse. Off for servers that close connections after an
    /// answer without saying so (Keystone under uwsgi): a pooled connection would then fail on
    /// its next use.
    pub pool: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retry: RetryConfig::default(),
            user_agent: concat!("simplestreams-rs/", env!("CARGO_PKG_VERSION")).into(),
            extra_roots: Vec::new(),
            accept_invalid_certs: false,
            pool: true,
        }
    }
}

impl HttpOptions {
    /// Refuses settings that would make every request fail at once.
    pub fn validate(&self) -> Result<(), String> {
        if self.connect_timeout.is_zero() {
            return Err("the connect timeout must be more than 0 seconds".into());
        }
        if self.read_timeout.is_zero() {
            return Err("the read timeout must be more than 0 seconds".into());
        }
        Ok(())
    }

    /// Adds the certificates of a PEM bundle to the trusted roots; `origin` names the bundle
    /// in the error.
    pub fn with_pem_roots(mut self, pem: &[u8], origin: &str) -> Result<Self, String> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("{origin}: not a PEM certificate bundle: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{origin}: holds no certificate"));
        }
        self.extra_roots.extend(certs);
        Ok(self)
    }

    /// Builds a client with these settings. It pools connections (unless `pool` is off):
    /// build one per process and share it.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        let mut b = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            // Bytes reach the checksum exactly as served, whatever features another crate
            // turns on in reqwest.
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd()
            .tls_certs_merge(self.extra_roots.iter().cloned())
            .danger_accept_invalid_certs(self.accept_invalid_certs);
        if !self.pool {
            b = b.pool_max_idle_per_host(0);
        }
        b.build()
    }
}
