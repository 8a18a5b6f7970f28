//! The retry loop.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};

use crate::RetryConfig;

/// Whether a request may be sent more than once.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// Sending it twice has the effect of sending it once (GET, HEAD, PUT, DELETE; a POST only
    /// when the caller knows it is). A request that is not is resent only when its connection
    /// never reached the server.
    pub idempotent: bool,
    /// It can be built again: its body is in memory (a streamed body can be sent only once).
    pub replayable: bool,
    /// Which error statuses are worth another try: [`RetryConfig::retryable_status`] unless
    /// the caller knows better (Swift's 422 to a PUT whose body did not match its `ETag`
    /// means the bytes were damaged on the way: sending them again is the cure).
    pub retry_status: fn(u16) -> bool,
}

impl Replay {
    /// An idempotent request with a body in memory (or none): retried on any retryable failure.
    pub const IDEMPOTENT: Replay = Replay {
        idempotent: true,
        replayable: true,
        retry_status: RetryConfig::retryable_status,
    };
    /// A request with a streamed body: sent once.
    pub const ONCE: Replay = Replay {
        idempotent: false,
        replayable: false,
        retry_status: RetryConfig::retryable_status,
    };
}

/// Why [`send`] gave up.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with a status the caller does not accept: one not worth retrying,
    /// or the last of the retries allowed. The response is kept for its body and headers.
    Status {
        /// The last answer.
        response: Response,
        /// Attempts made, this one included.
        attempts: u32,
    },
    /// No answer: connection refused or reset, timeout, TLS refusal.
    Transport {
        /// The last error (its `source()` chain holds the cause).
        source: reqwest::Error,
        /// Attempts made, this one included.
        attempts: u32,
    },
}

/// Sends the request that `build` makes (called again for each attempt, with the attempt
/// number from 0), until an answer `accept`s, or the failure is final, or the retries of
/// `retry` run out; waits [`RetryConfig::wait`] between attempts.
pub async fn send(
    retry: &RetryConfig,
    replay: Replay,
    accept: impl Fn(StatusCode) -> bool,
    mut build: impl FnMut(u32) -> RequestBuilder,
) -> Result<Response, Failure> {
    let mut attempt = 0u32;
    loop {
        let can_retry = replay.replayable && attempt < retry.max_retries;
        let attempts = attempt + 1;
        let retry_after = match build(attempt).send().await {
            Ok(resp) if accept(resp.status()) => return Ok(resp),
            Ok(response) => {
                let status = response.status();
                if !(can_retry && replay.idempotent && (replay.retry_status)(status.as_u16())) {
                    return Err(Failure::Status { response, attempts });
                }
                tracing::debug!(%status, url = %response.url(), attempts, "retrying after an error status");
                retry_after(&response)
            }
            Err(source) => {
                // A connection that never reached the server can carry any request again. A
                // refused certificate stays refused.
                let safe = replay.idempotent || source.is_connect();
                if !(can_retry && safe) || is_tls_refusal(&source) {
                    return Err(Failure::Transport { source, attempts });
                }
                tracing::debug!(error = %source, attempts, "retrying after a transport error");
                None
            }
        };
        tokio::time::sleep(retry.wait(attempt, retry_after)).await;
        attempt += 1;
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from the services met here).
fn retry_after(resp: &Response) -> Option<Duration> {
    if !matches!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    let secs: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Whether a transport error is a TLS refusal (an unknown CA, a wrong host name): TLS
/// libraries report those as `InvalidData` I/O errors somewhere down the source chain.
pub fn is_tls_refusal(e: &reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::InvalidData => return true,
            // An I/O error's `source()` skips the error it wraps: look at that one itself.
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}
