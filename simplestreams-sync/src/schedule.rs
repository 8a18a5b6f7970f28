//! When each job runs: its schedule (`hourly`, `daily`, `weekly` or an interval), the jitter
//! added to scheduled runs, the retries before the first success and the backoff after a failed
//! scheduled run. Pure arithmetic on [`SystemTime`]s, so that it can be tested without waiting.
//!
//! The rules, as the glance-simplestreams-sync charm's two cron entries behave and a little
//! better:
//!
//! - **Until a job has succeeded once**, a failed run is retried every `retry_interval` (one
//!   minute by default; the charm's every-minute "fast poll").
//! - **After a success**, the next run is one interval after the start of the run that
//!   succeeded, plus a random jitter in `[0, jitter]` (a fleet of services started together does
//!   not hit a mirror at the same second); a run that took longer than the interval is followed
//!   at once.
//! - **A failed scheduled run** is retried after `retry_interval`, then twice that, four times
//!   that, … up to `max_backoff` (one hour by default) and never later than one interval: never
//!   more often than the retry interval, never less often than the schedule.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// How often a job runs once it has succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every hour (the charm's `frequency: hourly`).
    Hourly,
    /// Every day (the charm's default).
    Daily,
    /// Every week.
    Weekly,
    /// Every this long (`30m`, `6h`, `90s`, `500ms`).
    Every(Duration),
}

impl Schedule {
    /// The time between two scheduled runs.
    pub fn interval(&self) -> Duration {
        match self {
            Schedule::Hourly => Duration::from_secs(3600),
            Schedule::Daily => Duration::from_secs(24 * 3600),
            Schedule::Weekly => Duration::from_secs(7 * 24 * 3600),
            Schedule::Every(d) => *d,
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "hourly" => Ok(Schedule::Hourly),
            "daily" => Ok(Schedule::Daily),
            "weekly" => Ok(Schedule::Weekly),
            other => {
                let d = parse_duration(other).map_err(|e| {
                    format!("{e} (a schedule is hourly, daily, weekly or an interval: 30m, 6h)")
                })?;
                if d.is_zero() {
                    return Err("the interval must be more than 0".into());
                }
                Ok(Schedule::Every(d))
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Hourly => f.write_str("hourly"),
            Schedule::Daily => f.write_str("daily"),
            Schedule::Weekly => f.write_str("weekly"),
            Schedule::Every(d) => write!(f, "every {}", format_duration(*d)),
        }
    }
}

/// The random delay added to scheduled runs: at most a fraction of the interval, or at most a
/// fixed time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Up to this fraction (0 to 1) of the interval (`10%`).
    Fraction(f64),
    /// Up to this long (`5m`; `0` for none).
    UpTo(Duration),
}

impl Default for Jitter {
    /// Up to 10% of the interval, and never more than 15 minutes (see [`Timing::max_jitter`]).
    fn default() -> Self {
        Jitter::Fraction(0.1)
    }
}

impl FromStr for Jitter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(pct) = s.strip_suffix('%') {
            let v: f64 = pct
                .trim()
                .parse()
                .map_err(|_| format!("{s:?}: expected a percentage (10%) or a duration (5m)"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("{s:?}: a percentage between 0% and 100%"));
            }
            return Ok(Jitter::Fraction(v / 100.0));
        }
        parse_duration(s).map(Jitter::UpTo)
    }
}

/// The cap on a percentage jitter, so that a weekly job does not drift by most of a day.
const MAX_FRACTION_JITTER: Duration = Duration::from_secs(15 * 60);

/// A job's timing: schedule, jitter, retries and backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// How often the job runs once it has succeeded.
    pub schedule: Schedule,
    /// The random delay added to each scheduled run.
    pub jitter: Jitter,
    /// The delay before retrying a failed run (until the first success, always this).
    pub retry_interval: Duration,
    /// The longest delay between retries after a failed scheduled run.
    pub max_backoff: Duration,
}

impl Default for Timing {
    /// Daily, jitter up to 10% (at most 15 minutes), retry every minute, backoff up to an hour.
    fn default() -> Self {
        Timing {
            schedule: Schedule::Daily,
            jitter: Jitter::default(),
            retry_interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

impl Timing {
    /// The largest jitter added to a scheduled run.
    pub fn max_jitter(&self) -> Duration {
        match self.jitter {
            Jitter::Fraction(f) => self
                .schedule
                .interval()
                .mul_f64(f.clamp(0.0, 1.0))
                .min(MAX_FRACTION_JITTER),
            Jitter::UpTo(d) => d,
        }
    }

    /// When to run next after a successful run that started at `started` and ended at
    /// `ended`; `random` (in `[0, 1)`) picks the jitter.
    pub fn after_success(&self, started: SystemTime, ended: SystemTime, random: f64) -> SystemTime {
        let jitter = self.max_jitter().mul_f64(random.clamp(0.0, 1.0));
        let due = started + self.schedule.interval() + jitter;
        due.max(ended)
    }

    /// The delay before retrying after `failures` consecutive failed runs (1 for the first);
    /// `ever_succeeded` says whether the job has succeeded before (else: the retry interval,
    /// always).
    pub fn retry_delay(&self, failures: u32, ever_succeeded: bool) -> Duration {
        if !ever_succeeded || failures <= 1 {
            return self.retry_interval;
        }
        let cap = self
            .max_backoff
            .min(self.schedule.interval())
            .max(self.retry_interval);
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
        self.retry_interval.saturating_mul(factor).min(cap)
    }

    /// When to run next after a failed run that ended at `ended` (see [`Timing::retry_delay`]).
    pub fn after_failure(
        &self,
        ended: SystemTime,
        failures: u32,
        ever_succeeded: bool,
    ) -> SystemTime {
        ended + self.retry_delay(failures, ever_succeeded)
    }

    /// When to run first when a service starts at `now`, knowing the job's last run from the
    /// status file: a job whose last run succeeded keeps its schedule (a restart does not make
    /// every job run at once); one that never ran, failed or was interrupted runs now.
    pub fn at_start(&self, now: SystemTime, last: Option<LastRun>, random: f64) -> SystemTime {
        match last {
            Some(LastRun {
                started,
                ended,
                success: true,
            }) => self.after_success(started, ended, random).min(
                // A clock set back must not postpone the job by more than an interval.
                now + self.schedule.interval() + self.max_jitter(),
            ),
            _ => now,
        }
    }
}

/// What the status file says of a job's last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    /// When it started.
    pub started: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
    /// Whether it succeeded.
    pub success: bool,
}

/// Parses a duration: a number with a unit, `ms`, `s`, `m`, `h`, `d` or `w`, or several
/// (`1h30m`); a bare number is seconds (`90`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let bad = || format!("{text:?}: expected a duration such as 90s, 30m, 6h, 1d, 500ms or 1h30m");
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_end].trim();
        rest = rest[unit_end..].trim_start();
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" | "sec" | "secs" => value,
            "m" | "min" | "mins" => value * 60.0,
            "h" | "hour" | "hours" => value * 3600.0,
            "d" | "day" | "days" => value * 86400.0,
            "w" | "week" | "weeks" => value * 7.0 * 86400.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    }
    Ok(total)
}

/// A duration for people: `1d 2h`, `30m`, `1.5s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    if secs < 60 {
        let tenths = (d.as_secs_f64() * 10.0).round() / 10.0;
        return if tenths.fract() == 0.0 {
            format!("{tenths:.0}s")
        } else {
            format!("{tenths:.1}s")
        };
    }
    let units = [
        ("w", 7 * 86400),
        ("d", 86400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ];
    let mut rest = secs;
    let mut parts = Vec::new();
    for (name, size) in units {
        if rest >= size {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn durations_parse_with_units_and_combinations() {
        assert_eq!(parse_duration("30m"), Ok(30 * MIN));
        assert_eq!(parse_duration("6h"), Ok(360 * MIN));
        assert_eq!(parse_duration("1h30m"), Ok(90 * MIN));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn schedules_are_the_charm_frequencies_or_intervals() {
        assert_eq!("daily".parse(), Ok(Schedule::Daily));
        assert_eq!(
            "hourly".parse::<Schedule>().map(|s| s.interval()),
            Ok(60 * MIN)
        );
        assert_eq!(
            "weekly".parse::<Schedule>().map(|s| s.interval()),
            Ok(Duration::from_secs(7 * 86400))
        );
        assert_eq!("30m".parse(), Ok(Schedule::Every(30 * MIN)));
        assert!("0s".parse::<Schedule>().is_err());
        assert!("monthly".parse::<Schedule>().is_err());
        assert_eq!(Schedule::Every(90 * MIN).to_string(), "every 1h 30m");
    }

    #[test]
    fn first_success_is_retried_every_retry_interval_without_backoff() {
        let t = Timing::default();
        for failures in [1, 2, 5, 50] {
            assert_eq!(t.retry_delay(failures, false), MIN, "{failures}");
            assert_eq!(t.after_failure(t0(), failures, false), t0() + MIN);
        }
    }

    #[test]
    fn failed_scheduled_runs_back_off_from_the_retry_interval_up_to_the_cap() {
        let t = Timing::default(); // daily, retry 1m, max backoff 1h
        let delays: Vec<u64> = (1..=9)
            .map(|n| t.retry_delay(n, true).as_secs() / 60)
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // Never less often than the schedule: an hourly job backs off to an hour at most…
        let short = Timing {
            schedule: Schedule::Every(10 * MIN),
            ..t
        };
        assert_eq!(short.retry_delay(20, true), 10 * MIN);
        // …and never more often than the retry interval, even when the interval is shorter.
        let tiny = Timing {
            schedule: Schedule::Every(Duration::from_secs(10)),
            ..t
        };
        assert_eq!(tiny.retry_delay(20, true), MIN);
        assert_eq!(t.retry_delay(u32::MAX, true), 60 * MIN);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let t = Timing::default();
        // 10% of a day is capped at 15 minutes.
        assert_eq!(t.max_jitter(), 15 * MIN);
        let hourly = Timing {
            schedule: Schedule::Hourly,
            ..t
        };
        assert_eq!(hourly.max_jitter(), 6 * MIN);
        let fixed = Timing {
            jitter: Jitter::UpTo(5 * MIN),
            ..t
        };
        let start = t0();
        let end = start + MIN;
        for i in 0..100 {
            let r = f64::from(i) / 100.0;
            let next = fixed.after_success(start, end, r);
            let delay = next.duration_since(start).expect("after start");
            assert!(delay >= Duration::from_secs(86400), "{delay:?}");
            assert!(delay <= Duration::from_secs(86400) + 5 * MIN, "{delay:?}");
        }
        let none = Timing {
            jitter: Jitter::UpTo(Duration::ZERO),
            ..t
        };
        assert_eq!(
            none.after_success(start, end, 0.99),
            start + Duration::from_secs(86400)
        );
        assert_eq!("10%".parse(), Ok(Jitter::Fraction(0.1)));
        assert_eq!("0".parse(), Ok(Jitter::UpTo(Duration::ZERO)));
        assert!("150%".parse::<Jitter>().is_err());
    }

    #[test]
    fn a_run_longer_than_the_interval_is_followed_at_once() {
        let t = Timing {
            schedule: Schedule::Every(MIN),
            jitter: Jitter::UpTo(Duration::ZERO),
            ..Timing::default()
        };
        let start = t0();
        let end = start + 5 * MIN;
        assert_eq!(t.after_success(start, end, 0.5), end);
    }

    #[test]
    fn a_restart_keeps_the_schedule_of_a_success_and_retries_anything_else_now() {
        let t = Timing {
            jitter: Jitter::UpTo(Duration::ZERO),
            ..Timing::default()
        };
        let started = t0();
        let ended = started + MIN;
        let now = started + 60 * MIN;
        let ok = LastRun {
            started,
            ended,
            success: true,
        };
        assert_eq!(
            t.at_start(now, Some(ok), 0.0),
            started + Duration::from_secs(86400)
        );
        let failed = LastRun {
            success: false,
            ..ok
        };
        assert_eq!(t.at_start(now, Some(failed), 0.0), now);
        assert_eq!(t.at_start(now, None, 0.0), now);
        // A status file from the future (clock set back) postpones by one interval at most.
        let future = LastRun {
            started: now + Duration::from_secs(10 * 86400),
            ended: now + Duration::from_secs(10 * 86400),
            success: true,
        };
        assert_eq!(
            t.at_start(now, Some(future), 0.0),
            now + Duration::from_secs(86400)
        );
    }

    #[test]
    fn durations_print_for_people() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(2990)), "3s");
        assert_eq!(
            format_duration(Duration::from_secs(3 * 3600 + 120)),
            "3h 2m"
        );
        assert_eq!(format_duration(Duration::from_secs(86400)), "1d");
    }
}
