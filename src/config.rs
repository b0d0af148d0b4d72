//! Typed configuration, built once from the command line / environment and
//! validated before anything connects.

use crate::cli::{CommonArgs, GatewayArgs, RateLimitArgs};
use anyhow::{Context, bail};
use flashdeal_gateway::{
    GatewaySettings,
    auth::JwtKeys,
    rate_limit::{Rate, RateLimitSettings},
};
use flashdeal_producers::KafkaSettings;
use std::{io::Read, path::PathBuf, time::Duration};

/// Settings shared by every role.
#[derive(Clone, Debug)]
pub struct Config {
    /// The owner's URL: migrations, `audit`, `seed`. Roles connect with
    /// [`Config::service_url`] instead.
    pub database_url: String,
    pub redis_url: String,
    /// `None`: use the embedded broker.
    pub kafka_brokers: Option<String>,
    pub broker_port: u16,
    pub data_dir: PathBuf,
    pub partitions: i32,
    pub producer_linger: Duration,
    pub producer_compression: String,
    /// Schema registry base URL; `None`: publish single-object encoding.
    pub schema_registry_url: Option<String>,
    /// Where a role without an HTTP server (order-writer, projector,
    /// reconciler, relay) serves `/metrics`; `None`: nowhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Config {
    /// A config for tests and tools: these services, every knob at its default.
    pub fn with_services(
        database_url: String,
        redis_url: String,
        kafka_brokers: String,
        data_dir: PathBuf,
        partitions: i32,
    ) -> Self {
        let defaults = KafkaSettings::new(kafka_brokers.clone());
        Self {
            database_url,
            redis_url,
            kafka_brokers: Some(kafka_brokers),
            broker_port: 0,
            data_dir,
            partitions,
            producer_linger: defaults.linger,
            producer_compression: defaults.compression,
            schema_registry_url: None,
            metrics_addr: None,
        }
    }

    /// Builds the config from the command line; `DATABASE_URL_FILE` (a
    /// mounted secret) takes precedence over `DATABASE_URL`, so the
    /// password need not sit in the environment.
    pub fn from_args(a: CommonArgs) -> anyhow::Result<Self> {
        let database_url = match std::env::var("DATABASE_URL_FILE") {
            Ok(path) => std::fs::read_to_string(&path)
                .with_context(|| format!("reading DATABASE_URL_FILE {path}"))?
                .trim()
                .to_owned(),
            Err(_) => a.database_url,
        };
        Ok(Self {
            database_url,
            redis_url: a.redis_url,
            kafka_brokers: a.kafka_brokers.filter(|b| !b.trim().is_empty()),
            broker_port: a.broker_port,
            data_dir: a.data_dir,
            partitions: a.partitions,
            producer_linger: Duration::from_millis(a.producer_linger_ms),
            producer_compression: a.producer_compression,
            schema_registry_url: a.schema_registry_url.filter(|u| !u.trim().is_empty()),
            metrics_addr: a.metrics_addr,
        })
    }

    /// The URL a service's pool uses: `FLASHDEAL_<SERVICE>_DATABASE_URL`
    /// (or `…_FILE`) when set, else `DATABASE_URL` logged in as the
    /// service's role `flashdeal_<service>` (no password: set the variable
    /// where PostgreSQL asks for one).
    pub fn service_url(&self, service: Service) -> anyhow::Result<String> {
        let var = format!("FLASHDEAL_{}_DATABASE_URL", service.name().to_uppercase());
        if let Some(url) = secret_var(&var)? {
            return Ok(url);
        }
        let mut url = url::Url::parse(&self.database_url).context("DATABASE_URL is not a URL")?;
        url.set_username(service.role())
            .map_err(|()| anyhow::anyhow!("DATABASE_URL cannot carry a user name"))?;
        url.set_password(None)
            .map_err(|()| anyhow::anyhow!("DATABASE_URL cannot carry a password"))?;
        Ok(url.to_string())
    }

    /// The brokers every client connects to.
    pub fn kafka(&self) -> KafkaSettings {
        let mut k = KafkaSettings::new(
            self.kafka_brokers
                .clone()
                .unwrap_or_else(|| format!("127.0.0.1:{}", self.broker_port)),
        );
        k.linger = self.producer_linger;
        k.compression = self.producer_compression.clone();
        k
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=1000).contains(&self.partitions) {
            bail!(
                "FLASHDEAL_PARTITIONS must be between 1 and 1000, got {}",
                self.partitions
            );
        }
        Ok(())
    }
}

/// The three services that own a PostgreSQL schema (and a role).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Auth,
    Catalog,
    Orders,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Catalog => "catalog",
            Self::Orders => "orders",
        }
    }

    /// The role the migrations create for this service.
    pub fn role(self) -> &'static str {
        match self {
            Self::Auth => "flashdeal_auth",
            Self::Catalog => "flashdeal_catalog",
            Self::Orders => "flashdeal_orders",
        }
    }
}

/// `$VAR`, or the trimmed content of the file named by `$VAR_FILE`.
pub fn secret_var(var: &str) -> anyhow::Result<Option<String>> {
    if let Ok(v) = std::env::var(var) {
        return Ok(Some(v));
    }
    match std::env::var(format!("{var}_FILE")) {
        Ok(path) => Ok(Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {var}_FILE {path}"))?
                .trim()
                .to_owned(),
        )),
        Err(_) => Ok(None),
    }
}

/// The gateway's settings, checked against the producer's delivery timeout:
/// a reservation must outlive any intent that could still be delivered.
pub fn gateway_settings(
    args: &GatewayArgs,
    kafka: &KafkaSettings,
) -> anyhow::Result<GatewaySettings> {
    let reservation_ttl = Duration::from_secs(args.reservation_ttl_secs);
    let floor = kafka.delivery_timeout * 2 + Duration::from_secs(5);
    if reservation_ttl < floor {
        bail!(
            "FLASHDEAL_RESERVATION_TTL_SECS ({}s) must be at least {}s: twice the producer's delivery timeout ({}s) plus 5s",
            reservation_ttl.as_secs(),
            floor.as_secs(),
            kafka.delivery_timeout.as_secs()
        );
    }
    if args.idempotency_ttl_secs < 60 {
        bail!("FLASHDEAL_IDEMPOTENCY_TTL_SECS must be at least 60");
    }
    Ok(GatewaySettings {
        reservation_ttl,
        idempotency_ttl: Duration::from_secs(args.idempotency_ttl_secs),
        rate_limit: rate_limit_settings(&args.rate_limit)?,
    })
}

/// The token buckets from their flags; a negative or non-finite rate, or a
/// burst of 0 with a rate, is a configuration error.
pub fn rate_limit_settings(args: &RateLimitArgs) -> anyhow::Result<RateLimitSettings> {
    let rate = |name: &str, rps: f64, burst: u32| -> anyhow::Result<Option<Rate>> {
        if !rps.is_finite() || rps < 0.0 {
            bail!("FLASHDEAL_RATE_LIMIT_{name}_RPS must be a number >= 0 (0 turns it off)");
        }
        if rps > 0.0 && burst == 0 {
            bail!("FLASHDEAL_RATE_LIMIT_{name}_BURST must be at least 1");
        }
        Ok(Rate::new(rps, burst))
    };
    if args.rate_limit_max_keys == 0 {
        bail!("FLASHDEAL_RATE_LIMIT_MAX_KEYS must be at least 1");
    }
    Ok(RateLimitSettings {
        per_ip: rate(
            "PER_IP",
            args.rate_limit_per_ip_rps,
            args.rate_limit_per_ip_burst,
        )?,
        per_user: rate(
            "PER_USER",
            args.rate_limit_per_user_rps,
            args.rate_limit_per_user_burst,
        )?,
        trusted_proxy_hops: args.rate_limit_trusted_proxy_hops,
        exempt_loopback: args.rate_limit_exempt_loopback,
        max_keys: args.rate_limit_max_keys,
    })
}

/// The JWT keys: the secret comes from `FLASHDEAL_JWT_SECRET`,
/// `FLASHDEAL_JWT_SECRET_FILE`, or (local runs) a random secret generated
/// once into `<data-dir>/jwt-secret`, named `FLASHDEAL_JWT_KID` (`k1`). It
/// is never logged. The gateway uses it only to seed an empty
/// `auth.signing_keys`; after that the ring in the database (rotated with
/// `POST /admin/auth/signing-keys/rotate`) wins.
pub fn jwt_keys(data_dir: &std::path::Path, token_ttl: Duration) -> anyhow::Result<JwtKeys> {
    let secret = if let Ok(s) = std::env::var("FLASHDEAL_JWT_SECRET") {
        s.into_bytes()
    } else if let Ok(path) = std::env::var("FLASHDEAL_JWT_SECRET_FILE") {
        let s = std::fs::read_to_string(&path)
            .with_context(|| format!("reading FLASHDEAL_JWT_SECRET_FILE {path}"))?;
        s.trim_end().as_bytes().to_vec()
    } else {
        local_secret(data_dir)?
    };
    let kid = std::env::var("FLASHDEAL_JWT_KID").unwrap_or_else(|_| "k1".to_owned());
    let issuer = std::env::var("FLASHDEAL_JWT_ISSUER").unwrap_or_else(|_| "flashdeal".to_owned());
    let audience =
        std::env::var("FLASHDEAL_JWT_AUDIENCE").unwrap_or_else(|_| "flashdeal-api".to_owned());
    JwtKeys::hs256(kid, &secret, issuer, audience, token_ttl).context("FLASHDEAL_JWT_SECRET")
}

fn local_secret(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim_end().as_bytes().to_vec());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .context("reading /dev/urandom for a JWT secret")?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &hex)?;
    tracing::info!(path = %path.display(), "generated a local JWT secret");
    Ok(hex.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    std::fs::write(path, content).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(reservation_ttl_secs: u64) -> GatewayArgs {
        GatewayArgs {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            reservation_ttl_secs,
            idempotency_ttl_secs: 3600,
            token_ttl_secs: 3600,
            rate_limit: RateLimitArgs::default(),
        }
    }

    #[test]
    fn rate_limits_default_on_and_zero_turns_them_off() {
        let on = rate_limit_settings(&RateLimitArgs::default()).unwrap();
        assert!(on.per_ip.is_some() && on.per_user.is_some());
        assert!(on.exempt_loopback);
        let off = rate_limit_settings(&RateLimitArgs::OFF).unwrap();
        assert_eq!((off.per_ip, off.per_user), (None, None));
        let bad = |a: RateLimitArgs| rate_limit_settings(&a).is_err();
        assert!(bad(RateLimitArgs {
            rate_limit_per_user_burst: 0,
            ..RateLimitArgs::DEFAULT
        }));
        assert!(bad(RateLimitArgs {
            rate_limit_per_ip_rps: -1.0,
            ..RateLimitArgs::DEFAULT
        }));
    }

    #[test]
    fn a_reservation_must_outlive_the_producer_delivery_timeout() {
        let kafka = KafkaSettings::new("b:9092");
        let err = gateway_settings(&args(10), &kafka).unwrap_err().to_string();
        assert!(err.contains("at least 15s"), "{err}");
        assert_eq!(
            gateway_settings(&args(15), &kafka).unwrap().reservation_ttl,
            Duration::from_secs(15)
        );
    }

    #[test]
    fn a_local_jwt_secret_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("flashdeal-jwt-{}", uuid::Uuid::now_v7()));
        let first = local_secret(&dir).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(local_secret(&dir).unwrap(), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_service_logs_in_as_its_own_role() {
        let c = Config::with_services(
            "postgres://owner:pw@db:5432/flashdeal".to_owned(),
            "redis://r".to_owned(),
            "b:9092".to_owned(),
            PathBuf::from("/tmp"),
            1,
        );
        assert_eq!(
            c.service_url(Service::Orders).unwrap(),
            "postgres://flashdeal_orders@db:5432/flashdeal"
        );
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            crate::database::redact("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            crate::database::redact("redis://127.0.0.1"),
            "redis://127.0.0.1"
        );
    }
}
