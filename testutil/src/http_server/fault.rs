//! Scriptable faults: what the server does wrong, and on which paths.

/// One way for the server to misbehave. Several faults may apply to one request (for example
/// [`Fault::Throttle`] with [`Fault::CutAfter`]); each acts on its own part of the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Send the headers and only this many bytes of the body, then close the connection
    /// (the announced `Content-Length` stays the real one, so a client sees a short body).
    CutAfter(u64),
    /// Ignore any `Range` header: answer `200` with the whole body.
    IgnoreRange,
    /// Send the body at about this many bytes per second.
    Throttle(u64),
    /// Answer `status` (normally a 5xx) with a short text body to the first `times` requests
    /// this fault matches, then behave. The count is per fault, shared by all paths it matches.
    FailFirst {
        /// How many requests fail.
        times: u32,
        /// The status they get.
        status: u16,
    },
    /// Announce a `Content-Length` this many bytes off the truth (negative: less than is sent),
    /// send the real body, then close the connection: the only way to end such a response.
    LengthOffBy(i64),
    /// Answer `404 Not Found` whether or not the file exists.
    NotFound,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every request.
    All,
    /// Exactly this decoded path (always starting with `/`).
    Path(String),
    /// Every decoded path starting with this.
    Prefix(String),
}

impl Scope {
    /// `"/a/b"` is one path; a trailing `*` (`"/streams/*"`) makes a prefix. A missing leading
    /// `/` is added, so `"a/b"` and `"/a/b"` are the same path.
    pub(crate) fn parse(pattern: &str) -> Scope {
        let with_slash = if pattern.starts_with('/') {
            pattern.to_string()
        } else {
            format!("/{pattern}")
        };
        match with_slash.strip_suffix('*') {
            Some(prefix) => Scope::Prefix(prefix.to_string()),
            None => Scope::Path(with_slash),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Path(p) => p == path,
            Scope::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

/// A fault with its scope and, for [`Fault::FailFirst`], how many failures are left.
#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub(crate) scope: Scope,
    pub(crate) fault: Fault,
    remaining_failures: u32,
}

impl FaultRule {
    pub(crate) fn new(scope: Scope, fault: Fault) -> FaultRule {
        let remaining_failures = match fault {
            Fault::FailFirst { times, .. } => times,
            _ => 0,
        };
        FaultRule {
            scope,
            fault,
            remaining_failures,
        }
    }
}

/// What the faults matching one request ask for, resolved once so the response code does not
/// look at rules again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// A status to answer instead of the file (404, or a scripted failure).
    pub(crate) status: Option<u16>,
    pub(crate) ignore_range: bool,
    pub(crate) cut_after: Option<u64>,
    pub(crate) throttle: Option<u64>,
    pub(crate) length_off_by: i64,
}

impl Plan {
    /// Whether the response breaks the framing of the connection, so it must be closed after.
    pub(crate) fn breaks_connection(&self) -> bool {
        self.cut_after.is_some() || self.length_off_by != 0
    }
}

/// Resolves the rules matching `path` into a plan, using up one failure of the first
/// [`Fault::FailFirst`] that has any left (so one request never consumes two counts).
pub(crate) fn plan_for(rules: &mut [FaultRule], path: &str) -> Plan {
    let mut plan = Plan::default();
    for rule in rules.iter_mut().filter(|r| r.scope.matches(path)) {
        match rule.fault {
            Fault::CutAfter(n) => plan.cut_after = Some(plan.cut_after.map_or(n, |m| m.min(n))),
            Fault::IgnoreRange => plan.ignore_range = true,
            Fault::Throttle(rate) => plan.throttle = Some(rate.max(1)),
            Fault::LengthOffBy(delta) => plan.length_off_by += delta,
            Fault::NotFound => plan.status = plan.status.or(Some(404)),
            Fault::FailFirst { status, .. } => {
                if plan.status.is_none() && rule.remaining_failures > 0 {
                    rule.remaining_failures -= 1;
                    plan.status = Some(status);
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_patterns() {
        assert_eq!(Scope::parse("a/b"), Scope::Path("/a/b".into()));
        assert_eq!(
            Scope::parse("/streams/*"),
            Scope::Prefix("/streams/".into())
        );
        assert!(Scope::parse("/streams/*").matches("/streams/v1/index.json"));
        assert!(!Scope::parse("/streams/*").matches("/other"));
        assert!(!Scope::parse("/a").matches("/a/b"));
    }

    #[test]
    fn fail_first_counts_down_per_rule() {
        let fault = Fault::FailFirst {
            times: 2,
            status: 503,
        };
        let mut rules = vec![FaultRule::new(Scope::Prefix("/".into()), fault)];
        assert_eq!(plan_for(&mut rules, "/a").status, Some(503));
        assert_eq!(plan_for(&mut rules, "/b").status, Some(503));
        assert_eq!(plan_for(&mut rules, "/a").status, None);
    }

    #[test]
    fn faults_combine_and_only_matching_ones_apply() {
        let mut rules = vec![
            FaultRule::new(Scope::All, Fault::Throttle(0)),
            FaultRule::new(Scope::Path("/x".into()), Fault::CutAfter(10)),
            FaultRule::new(Scope::Path("/x".into()), Fault::CutAfter(4)),
            FaultRule::new(Scope::Path("/y".into()), Fault::NotFound),
        ];
        let plan = plan_for(&mut rules, "/x");
        assert_eq!(plan.throttle, Some(1));
        assert_eq!(plan.cut_after, Some(4));
        assert_eq!(plan.status, None);
        assert!(plan.breaks_connection());
        assert_eq!(plan_for(&mut rules, "/y").status, Some(404));
    }
}
