//! Platform settings, read from the environment (and a `.env` file when present).
//!
//! Names and defaults are the seed platform's. Invalid values stop start-up with a
//! message naming the variable.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rand::RngCore;

/// Where the platform runs; production refuses weak secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "test" | "testing" => Ok(Self::Test),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!(
                "expected development, test or production, got {other:?}"
            )),
        }
    }
}

/// Where the trainer runs the networks (`TRAINER_DEVICE`): `auto` takes the first CUDA GPU
/// when the trainer is built with CUDA and one opens, else the CPU; `cuda` (or `cuda:N`)
/// insists on a GPU, so a GPU job that cannot open one fails instead of training on its CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    #[default]
    Auto,
    Cpu,
    /// A CUDA GPU by ordinal.
    Cuda(usize),
}

impl FromStr for DevicePreference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("expected auto, cpu, cuda or cuda:N, got {s:?}")),
        }
    }
}

impl fmt::Display for DevicePreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A start-up configuration error, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

/// File formats the platform can ingest.
pub const KNOWN_FILE_TYPES: [&str; 4] = ["csv", "json", "xlsx", "parquet"];

/// Every setting of the platform.
#[derive(Clone, PartialEq)]
pub struct Settings {
    pub environment: Environment,
    pub secret_key: String,
    /// True when no key was configured and a random one was made for this process.
    pub secret_key_generated: bool,
    pub access_token_expire_minutes: u64,
    pub refresh_token_expire_days: u64,
    pub max_file_size_mb: u64,
    pub supported_file_types: Vec<String>,
    pub default_sample_size: u64,
    pub max_sample_size: u64,
    pub min_sample_size: u64,
    pub default_epochs: u64,
    pub max_epochs: u64,
    pub min_epochs: u64,
    pub max_optimization_trials: u64,
    pub default_optimization_trials: u64,
    pub max_concurrent_generations: u64,
    pub cors_origins: Vec<String>,
    pub max_request_size_mb: u64,
    pub log_level: String,
    /// Failed logins of one client for one email within the window before that client is
    /// slowed down for that email (four times as many for any email).
    pub login_max_attempts: u64,
    pub login_window_minutes: u64,
    /// The longest a slowed-down client waits between login attempts.
    pub login_lockout_minutes: u64,
    /// Take the client's address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Every new generation request waits for an administrator's approval.
    pub require_approval: bool,
    /// A trainer run silent for this long is taken for dead and its request taken over.
    pub trainer_lease_seconds: u64,
    /// Read notifications older than this many days expire.
    pub notification_retention_days: u64,
    /// The longest a `GET /notifications?wait=` call waits (0..=20 seconds; 0 never waits).
    pub notification_max_wait_seconds: u64,
    /// An API call slower than this many seconds (not counting a long poll's wait) alerts
    /// the admins.
    pub slow_request_seconds: f64,
    /// A trainer run above this share of its memory (a percentage) alerts the admins once.
    pub trainer_memory_alert_percent: f64,
    /// Where the trainer runs the networks.
    pub trainer_device: DevicePreference,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("Settings")
            .field("environment", &self.environment)
            .field("secret_key", &"<redacted>")
            .field("max_file_size_mb", &self.max_file_size_mb)
            .field("cors_origins", &self.cors_origins)
            .field("log_level", &self.log_level)
            .finish_non_exhaustive()
    }
}

/// Shortest secret accepted in production, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

impl Settings {
    /// Read the process environment, after loading `.env` from the working directory if
    /// there is one (real environment variables win over the file).
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read settings from an explicit map (tests, tools).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| vars.get(name).cloned())
    }

    /// Settings for tests: defaults, the test environment and a fixed strong secret.
    pub fn for_tests() -> Self {
        let mut vars = HashMap::new();
        vars.insert("ENVIRONMENT".into(), "test".into());
        vars.insert(
            "SECRET_KEY".into(),
            "test-secret-key-that-is-long-enough-000".into(),
        );
        Self::from_map(&vars).expect("test settings are valid")
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let environment: Environment = env.parse("ENVIRONMENT", Environment::Development)?;
        let (secret_key, secret_key_generated) = secret_key(&get, environment)?;
        let supported_file_types = supported_file_types(&env)?;
        let log_level = log_level(&get)?;
        let s = Settings {
            environment,
            secret_key,
            secret_key_generated,
            access_token_expire_minutes: env.positive("ACCESS_TOKEN_EXPIRE_MINUTES", 30)?,
            refresh_token_expire_days: env.positive("REFRESH_TOKEN_EXPIRE_DAYS", 7)?,
            max_file_size_mb: env.positive("MAX_FILE_SIZE_MB", 500)?,
            supported_file_types,
            default_sample_size: env.positive("DEFAULT_SAMPLE_SIZE", 1000)?,
            max_sample_size: env.positive("MAX_SAMPLE_SIZE", 100_000)?,
            min_sample_size: env.positive("MIN_SAMPLE_SIZE", 100)?,
            default_epochs: env.positive("DEFAULT_EPOCHS", 100)?,
            max_epochs: env.positive("MAX_EPOCHS", 500)?,
            min_epochs: env.positive("MIN_EPOCHS", 10)?,
            max_optimization_trials: env.positive("MAX_OPTIMIZATION_TRIALS", 100)?,
            default_optimization_trials: env.positive("DEFAULT_OPTIMIZATION_TRIALS", 20)?,
            max_concurrent_generations: env.positive("MAX_CONCURRENT_GENERATIONS", 5)?,
            cors_origins: env.list(
                "CORS_ORIGINS",
                "http://localhost:3000,http://localhost:8000",
            ),
            max_request_size_mb: env.positive("MAX_REQUEST_SIZE_MB", 100)?,
            login_max_attempts: env.positive("LOGIN_MAX_ATTEMPTS", 5)?,
            login_window_minutes: env.positive("LOGIN_WINDOW_MINUTES", 15)?,
            login_lockout_minutes: env.positive("LOGIN_LOCKOUT_MINUTES", 15)?,
            trust_forwarded_for: env.parse("TRUST_FORWARDED_FOR", false)?,
            require_approval: env.parse("REQUIRE_APPROVAL", false)?,
            trainer_lease_seconds: env.positive("TRAINER_LEASE_SECONDS", 60)?,
            notification_retention_days: env.positive("NOTIFICATION_RETENTION_DAYS", 30)?,
            notification_max_wait_seconds: env.parse("NOTIFICATION_MAX_WAIT_SECONDS", 20)?,
            slow_request_seconds: env.parse("SLOW_REQUEST_SECONDS", 30.0)?,
            trainer_memory_alert_percent: env.parse("TRAINER_MEMORY_ALERT_PERCENT", 80.0)?,
            trainer_device: env.parse("TRAINER_DEVICE", DevicePreference::Auto)?,
            log_level,
        };
        ordered(
            "SAMPLE_SIZE",
            s.min_sample_size,
            s.default_sample_size,
            s.max_sample_size,
        )?;
        if s.notification_max_wait_seconds > 20 {
            return Err(ConfigError {
                variable: "NOTIFICATION_MAX_WAIT_SECONDS".into(),
                message: "at most 20 (API Gateway ends a call at 30 s)".into(),
            });
        }
        if !(s.slow_request_seconds > 0.0 && s.slow_request_seconds.is_finite()) {
            return Err(err(
                "SLOW_REQUEST_SECONDS",
                "must be a positive number of seconds",
            ));
        }
        if !(s.trainer_memory_alert_percent > 0.0 && s.trainer_memory_alert_percent <= 100.0) {
            return Err(err(
                "TRAINER_MEMORY_ALERT_PERCENT",
                "must be more than 0 and at most 100",
            ));
        }
        ordered("EPOCHS", s.min_epochs, s.default_epochs, s.max_epochs)?;
        ordered(
            "OPTIMIZATION_TRIALS",
            1,
            s.default_optimization_trials,
            s.max_optimization_trials,
        )?;
        Ok(s)
    }

    /// Largest accepted request body, in bytes.
    pub fn max_request_bytes(&self) -> usize {
        (self.max_request_size_mb as usize).saturating_mul(1024 * 1024)
    }

    /// Largest accepted dataset file, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_size_mb.saturating_mul(1024 * 1024)
    }
}

fn err(variable: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.into(),
        message: message.into(),
    }
}

fn ordered(what: &str, min: u64, default: u64, max: u64) -> Result<(), ConfigError> {
    if min <= default && default <= max {
        Ok(())
    } else {
        Err(err(
            &format!("DEFAULT_{what}"),
            format!("must lie between MIN_{what} ({min}) and MAX_{what} ({max}), got {default}"),
        ))
    }
}

/// `SECRET_KEY`, or a random one outside production (and whether it was generated).
fn secret_key(
    get: impl Fn(&str) -> Option<String>,
    environment: Environment,
) -> Result<(String, bool), ConfigError> {
    match get("SECRET_KEY").filter(|s| !s.is_empty()) {
        Some(k) if environment == Environment::Production && k.len() < MIN_SECRET_BYTES => {
            Err(err(
                "SECRET_KEY",
                format!("must be at least {MIN_SECRET_BYTES} bytes in production"),
            ))
        }
        Some(k) => Ok((k, false)),
        None if environment == Environment::Production => {
            Err(err("SECRET_KEY", "is required in production"))
        }
        None => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            Ok((hex::encode(bytes), true))
        }
    }
}

fn supported_file_types<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<Vec<String>, ConfigError> {
    let types = env.list("SUPPORTED_FILE_TYPES", "csv,json,xlsx,parquet");
    match types
        .iter()
        .find(|t| !KNOWN_FILE_TYPES.contains(&t.as_str()))
    {
        Some(bad) => Err(err(
            "SUPPORTED_FILE_TYPES",
            format!(
                "unknown type {bad:?} (known: {})",
                KNOWN_FILE_TYPES.join(", ")
            ),
        )),
        None => Ok(types),
    }
}

/// `LOG_LEVEL`, lower-cased, with `warning` spelled `warn`.
fn log_level(get: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let level = get("LOG_LEVEL")
        .unwrap_or_else(|| "info".into())
        .to_ascii_lowercase();
    match level.as_str() {
        "warning" => Ok("warn".into()),
        "trace" | "debug" | "info" | "warn" | "error" => Ok(level),
        _ => Err(err(
            "LOG_LEVEL",
            "expected trace, debug, info, warn or error",
        )),
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn parse<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match (self.0)(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| err(name, format!("invalid value {v:?}: {e}"))),
        }
    }

    fn positive(&self, name: &str, default: u64) -> Result<u64, ConfigError> {
        let v: u64 = self.parse(name, default)?;
        if v == 0 {
            Err(err(name, "must be greater than zero"))
        } else {
            Ok(v)
        }
    }

    fn list(&self, name: &str, default: &str) -> Vec<String> {
        (self.0)(name)
            .unwrap_or_else(|| default.into())
            .split(',')
            .map(|s| {
                s.trim()
                    .to_ascii_lowercase()
                    .trim_end_matches('/')
                    .to_owned()
            })
            .filter(|s| !s.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_seed_platforms() {
        let s = Settings::from_map(&vars(&[])).unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert!(s.secret_key_generated);
        assert_eq!(s.secret_key.len(), 64);
        assert_eq!(s.access_token_expire_minutes, 30);
        assert_eq!(s.max_file_size_mb, 500);
        assert_eq!(s.supported_file_types, ["csv", "json", "xlsx", "parquet"]);
        assert_eq!(
            (s.min_epochs, s.default_epochs, s.max_epochs),
            (10, 100, 500)
        );
        assert_eq!(s.max_request_bytes(), 100 * 1024 * 1024);
    }

    #[test]
    fn the_trainer_device_is_auto_unless_named() {
        let device =
            |v: &str| Settings::from_map(&vars(&[("TRAINER_DEVICE", v)])).map(|s| s.trainer_device);
        assert_eq!(
            Settings::from_map(&vars(&[])).unwrap().trainer_device,
            DevicePreference::Auto
        );
        let cases = [
            ("auto", DevicePreference::Auto),
            ("", DevicePreference::Auto),
            ("CPU", DevicePreference::Cpu),
            ("cuda", DevicePreference::Cuda(0)),
            ("gpu", DevicePreference::Cuda(0)),
            (" cuda:3 ", DevicePreference::Cuda(3)),
        ];
        for (v, want) in cases {
            assert_eq!(device(v), Ok(want), "{v:?}");
            assert_eq!(want.to_string().parse(), Ok(want), "{want} reads back");
        }
        for bad in ["metal", "cuda:", "cuda:-1", "cuda0"] {
            let e = device(bad).unwrap_err();
            assert_eq!(e.variable, "TRAINER_DEVICE", "{bad:?}");
            assert!(e.message.contains("auto, cpu, cuda or cuda:N"), "{e}");
        }
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = Settings::from_map(&vars(&[("MAX_EPOCHS", "lots")])).unwrap_err();
        assert_eq!(e.variable, "MAX_EPOCHS");
        let e = Settings::from_map(&vars(&[("MIN_EPOCHS", "0")])).unwrap_err();
        assert_eq!(e.variable, "MIN_EPOCHS");
        let e = Settings::from_map(&vars(&[("DEFAULT_EPOCHS", "900")])).unwrap_err();
        assert_eq!(e.variable, "DEFAULT_EPOCHS");
        let e = Settings::from_map(&vars(&[("SUPPORTED_FILE_TYPES", "csv,exe")])).unwrap_err();
        assert_eq!(e.variable, "SUPPORTED_FILE_TYPES");
        let e = Settings::from_map(&vars(&[("ENVIRONMENT", "staging")])).unwrap_err();
        assert_eq!(e.variable, "ENVIRONMENT");
    }

    #[test]
    fn production_requires_a_strong_secret() {
        let e = Settings::from_map(&vars(&[("ENVIRONMENT", "production")])).unwrap_err();
        assert_eq!(e.variable, "SECRET_KEY");
        let short = vars(&[("ENVIRONMENT", "production"), ("SECRET_KEY", "short")]);
        assert_eq!(
            Settings::from_map(&short).unwrap_err().variable,
            "SECRET_KEY"
        );
        let ok = vars(&[
            ("ENVIRONMENT", "production"),
            ("SECRET_KEY", &"k".repeat(32)),
        ]);
        let s = Settings::from_map(&ok).unwrap();
        assert!(!s.secret_key_generated);
        assert!(!format!("{s:?}").contains("kkkk"));
    }
}
