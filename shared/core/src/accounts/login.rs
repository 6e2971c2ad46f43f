//! Login and brute-force protection.
//!
//! Failures are counted per (account, client) and per client, never per account alone:
//! a per-account lock would let anyone who knows an email lock its owner out. Once a key
//! reaches its number of failures, each further one slows it down with a doubling delay
//! (1 s, 2 s, 4 s, …, at most `LOGIN_LOCKOUT_MINUTES`) instead of locking it, so the owner,
//! from their own device, can always log in, while a guesser on one client gets a few
//! tries an hour.
//! Failures per account across all clients are counted too, only to raise an alert (a log
//! line and a `security.login_failures` message on the topic) when they pass a threshold:
//! that is the signature of a distributed attack.
//!
//! Records, in the windowed form `{count, window_start, blocked_until_ms}` (the block to
//! the millisecond, so a one-second delay is a whole second wherever in a second it began):
//! - `LOGIN#{email}` / `CLIENT#{client}` — one client's failures for one email;
//! - `LOGINCLIENT#{client}` / `FAILURES` — one client's failures for any email;
//! - `LOGIN#{email}` / `FAILURES` — every client's failures for one email (alert only).
//!
//! Unknown emails are counted exactly like known ones, so neither the answer (always
//! "invalid email or password"), its timing (a dummy hash is verified) nor the throttling
//! tells a caller whether an email has an account. Registration does say "already
//! registered": without an email channel to tell the owner privately, a person signing up
//! must learn it there. So a refused registration counts as a failure of its client, and
//! checking many emails that way is slowed down like guessing passwords.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{Accounts, Role, TokenPair, User, normalise_email, password, security_event, tokens};
use crate::PortError;
use crate::ports::records::{Cmp, Condition, Index, Item, Key, Query, Update, query_all};
use crate::service::{ServiceError, ServiceResult};

/// Who is calling, as far as throttling is concerned: the client's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    /// A client by its address (or any stable identifier); stored only as a hash.
    pub fn new(address: &str) -> Self {
        Self(tokens::sha256_hex(address.trim())[..32].to_owned())
    }

    /// The client when its address is not known (every such caller shares the counters).
    pub fn unknown() -> Self {
        Self::new("unknown")
    }
}

/// Failed-login limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginPolicy {
    /// Failures of one client for one email within the window before it is slowed down.
    pub max_failures: i64,
    /// Failures of one client across all emails within the window before it is slowed down.
    pub max_client_failures: i64,
    /// Failures for one email across all clients that raise an alert.
    pub alert_failures: i64,
    pub window: Duration,
    /// The longest delay a key is slowed down by.
    pub max_delay: Duration,
}

impl LoginPolicy {
    /// The delay after the `count`th failure of a key slowed down from its `limit`th.
    fn delay(&self, count: i64, limit: i64) -> Option<i64> {
        let over = count - limit;
        (over >= 0).then(|| {
            let doubling = 1i64.checked_shl(over.min(62) as u32).unwrap_or(i64::MAX);
            doubling.min(self.max_delay.as_secs() as i64)
        })
    }
}

fn pair_key(email: &str, client: &ClientId) -> Key {
    Key::new(format!("LOGIN#{email}"), format!("CLIENT#{}", client.0))
}

fn client_key(client: &ClientId) -> Key {
    Key::new(format!("LOGINCLIENT#{}", client.0), "FAILURES")
}

fn account_key(email: &str) -> Key {
    Key::new(format!("LOGIN#{email}"), "FAILURES")
}

impl Accounts {
    /// Create an account. Two concurrent registrations of one email give one account; an
    /// email already registered counts as a failure of the client (see the module docs).
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        full_name: Option<String>,
        client: &ClientId,
    ) -> ServiceResult<User> {
        self.check_throttle(&client_key(client)).await?;
        let made = super::register(
            self.records.as_ref(),
            email,
            password,
            full_name,
            Role::User,
        )
        .await;
        if let Err(ServiceError::Conflict(_)) = &made {
            let now = Utc::now().timestamp();
            self.throttle(&client_key(client), self.policy.max_client_failures, now)
                .await?;
        }
        made
    }

    /// Exchange credentials for tokens; the same answer for an unknown email and a wrong
    /// password, and a slow-down for a client that keeps failing (see the module docs).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientId,
    ) -> ServiceResult<TokenPair> {
        let invalid = || ServiceError::Unauthorized("invalid email or password".into());
        let normalised = normalise_email(email);
        // An email that cannot be one still counts against the client.
        let email = normalised.as_deref().unwrap_or("-");
        self.check_throttle(&client_key(client)).await?;
        self.check_throttle(&pair_key(email, client)).await?;
        if normalised.is_err() {
            password::verify_dummy(password);
            self.record_failure(email, client).await?;
            return Err(invalid());
        }
        let stored = match self.user_id_for_email(email).await? {
            Some(id) => self.stored_user(&id).await?,
            None => None,
        };
        let ok = match &stored {
            Some(s) => password::verify(password, &s.password_hash),
            None => {
                password::verify_dummy(password);
                false
            }
        };
        let Some(stored) = stored.filter(|_| ok) else {
            self.record_failure(email, client).await?;
            return Err(invalid());
        };
        if !stored.user.is_active {
            security_event(
                "login_refused_inactive",
                json!({ "user_id": stored.user.id }),
            );
            return Err(ServiceError::Unauthorized(
                "this account is deactivated".into(),
            ));
        }
        self.records.delete(&pair_key(email, client), None).await?;
        self.start_session(&stored.user).await
    }

    /// Erasure: the failure counters kept under an email (those per client address are
    /// anonymous and expire with their window).
    pub(super) async fn forget_login_failures(&self, email: &str) -> ServiceResult<()> {
        let q = Query::partition(Index::Primary, format!("LOGIN#{email}")).limit(100);
        for item in query_all(self.records.as_ref(), &q).await? {
            self.records.delete(&item.key(), None).await?;
        }
        Ok(())
    }

    async fn check_throttle(&self, key: &Key) -> ServiceResult<()> {
        let Some(item) = self.records.get(key).await? else {
            return Ok(());
        };
        let now_ms = Utc::now().timestamp_millis();
        if let Some(until) = item.i64("blocked_until_ms")
            && until > now_ms
        {
            return Err(ServiceError::RateLimited {
                message: "too many failed logins from this client; try again later".into(),
                retry_after_seconds: ((until - now_ms) as u64).div_ceil(1000),
            });
        }
        Ok(())
    }

    /// Count one failure on a windowed key; returns the count within the current window.
    async fn count_failure(&self, key: &Key, now: i64) -> ServiceResult<i64> {
        let window_start = now - self.policy.window.as_secs() as i64;
        let counted = self
            .records
            .update(
                key,
                Update::default().add("count", 1),
                Some(Condition::cmp("window_start", Cmp::Gt, window_start)),
            )
            .await;
        match counted {
            Ok(item) => Ok(item.i64("count").unwrap_or(1)),
            Err(PortError::ConditionFailed) => {
                let fresh = Item::new(key).with("count", 1).with("window_start", now);
                self.records.put(fresh, None).await?;
                Ok(1)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Count a failure on a throttled key and slow it down from its `limit`th failure.
    async fn throttle(&self, key: &Key, limit: i64, now: i64) -> ServiceResult<Option<i64>> {
        let count = self.count_failure(key, now).await?;
        let Some(delay) = self.policy.delay(count, limit) else {
            return Ok(None);
        };
        let until_ms = Utc::now().timestamp_millis() + delay * 1000;
        self.records
            .update(
                key,
                Update::default().set("blocked_until_ms", until_ms),
                None,
            )
            .await?;
        Ok(Some(until_ms / 1000))
    }

    async fn record_failure(&self, email: &str, client: &ClientId) -> ServiceResult<()> {
        let now = Utc::now().timestamp();
        let email_sha256 = tokens::sha256_hex(email);
        let pair = self
            .throttle(&pair_key(email, client), self.policy.max_failures, now)
            .await?;
        let from_client = self
            .throttle(&client_key(client), self.policy.max_client_failures, now)
            .await?;
        let on_account = self.count_failure(&account_key(email), now).await?;
        security_event(
            "login_failed",
            json!({ "email_sha256": email_sha256, "client": client.0, "account_failures": on_account }),
        );
        if let Some(until) = pair.or(from_client) {
            security_event(
                "login_slowed",
                json!({ "email_sha256": email_sha256, "client": client.0, "until": until }),
            );
        }
        // Once per window, when the account-wide count crosses the threshold.
        if on_account == self.policy.alert_failures {
            security_event(
                "login_attack_suspected",
                json!({ "email_sha256": email_sha256, "failures": on_account,
                        "window_minutes": self.policy.window.as_secs() / 60 }),
            );
            if let Some(user_id) = self.user_id_for_email(email).await? {
                let message = json!({
                    "type": "security.login_failures",
                    "user_id": user_id,
                    "failures": on_account,
                    "window_minutes": self.policy.window.as_secs() / 60,
                    "at": Utc::now().to_rfc3339(),
                });
                // The alert is best effort: a topic outage must not turn into a login error.
                if let Err(e) = self
                    .topic
                    .publish("security.login_failures", &message.to_string())
                    .await
                {
                    tracing::error!(error = %e, "could not publish the login alert");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_one_second_up_to_the_cap() {
        let p = LoginPolicy {
            max_failures: 5,
            max_client_failures: 20,
            alert_failures: 20,
            window: Duration::from_secs(900),
            max_delay: Duration::from_secs(900),
        };
        let delays: Vec<Option<i64>> = (1..=16).map(|n| p.delay(n, 5)).collect();
        assert_eq!(&delays[..4], &[None; 4]);
        assert_eq!(
            &delays[4..],
            &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900].map(Some)
        );
        assert_eq!(p.delay(i64::MAX, 5), Some(900));
        assert_eq!(ClientId::new("10.0.0.1"), ClientId::new(" 10.0.0.1 "));
        assert_ne!(ClientId::new("10.0.0.1"), ClientId::new("10.0.0.2"));
    }
}
