//! Sessions and their tokens: a login starts a session (a refresh-token family); each
//! refresh rotates the token, and a token presented twice — a replay, or two clients
//! racing with one stolen token — revokes the whole session. Access tokens are checked on
//! every request against a live session and an active account, so logout, reuse and
//! deactivation take effect at once.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Accounts, Principal, User, security_event, tokens, user_partition};
use crate::PortError;
use crate::ports::records::{Condition, Item, Key, TxOp, Update};
use crate::service::{ServiceError, ServiceResult};

/// The tokens a login or refresh hands out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

fn session_key(user: &str, sid: &str) -> Key {
    Key::new(user_partition(user), format!("SESSION#{sid}"))
}

fn token_key(user: &str, hash: &str) -> Key {
    Key::new(user_partition(user), format!("TOKEN#{hash}"))
}

/// A fresh refresh token of `user_id` and the hash it is stored under.
fn fresh_refresh_token(user_id: &str) -> (String, String) {
    let token = tokens::new_refresh_token(user_id);
    let (_, hash) = tokens::parse_refresh_token(&token).expect("fresh token parses");
    (token, hash)
}

impl Accounts {
    /// Start a session for `user` and hand out its first tokens.
    pub(super) async fn start_session(&self, user: &User) -> ServiceResult<TokenPair> {
        let sid = uuid::Uuid::new_v4().to_string();
        let (refresh, hash) = fresh_refresh_token(&user.id);
        let ops = vec![
            TxOp::Put {
                item: Item::new(&session_key(&user.id, &sid))
                    .with("revoked", false)
                    .with("created_at", Utc::now().to_rfc3339()),
                condition: Some(Condition::NotExists),
            },
            TxOp::Put {
                item: self.token_item(&user.id, &hash, &sid),
                condition: Some(Condition::NotExists),
            },
        ];
        self.records.transact(ops).await?;
        Ok(self.pair(user, &sid, refresh))
    }

    fn token_item(&self, user_id: &str, hash: &str, sid: &str) -> Item {
        Item::new(&token_key(user_id, hash))
            .with("session_id", sid)
            .with("used", false)
            .with("expires_at", (Utc::now() + self.refresh_ttl).timestamp())
    }

    fn pair(&self, user: &User, sid: &str, refresh: String) -> TokenPair {
        TokenPair {
            access_token: self.tokens.issue(&user.id, user.role, sid),
            refresh_token: refresh,
            token_type: "bearer".into(),
            expires_in: self.tokens.ttl_seconds(),
        }
    }

    async fn revoke_session(&self, user_id: &str, sid: &str) -> ServiceResult<()> {
        let update = Update::default().set("revoked", true);
        match self
            .records
            .update(&session_key(user_id, sid), update, Some(Condition::Exists))
            .await
        {
            Ok(_) | Err(PortError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A refresh token was presented again: end its session and say so.
    async fn reuse_detected(&self, user_id: &str, sid: &str) -> ServiceResult<()> {
        self.revoke_session(user_id, sid).await?;
        security_event(
            "refresh_token_reuse",
            json!({ "user_id": user_id, "session_id": sid }),
        );
        Ok(())
    }

    /// Rotate a refresh token. A token presented twice revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> ServiceResult<TokenPair> {
        let invalid = || ServiceError::Unauthorized("invalid or expired refresh token".into());
        let (user_id, hash) = tokens::parse_refresh_token(refresh_token).ok_or_else(invalid)?;
        let token = self
            .records
            .get(&token_key(&user_id, &hash))
            .await?
            .ok_or_else(invalid)?;
        let sid = token.str("session_id").unwrap_or_default().to_owned();
        if token.get("used") == Some(&Value::Bool(true)) {
            self.reuse_detected(&user_id, &sid).await?;
            return Err(invalid());
        }
        if token
            .i64("expires_at")
            .is_some_and(|e| e <= Utc::now().timestamp())
        {
            return Err(invalid());
        }
        let user = self.stored_user(&user_id).await?.ok_or_else(invalid)?.user;
        if !user.is_active {
            return Err(ServiceError::Unauthorized(
                "this account is deactivated".into(),
            ));
        }
        let (next, next_hash) = fresh_refresh_token(&user_id);
        let ops = vec![
            TxOp::Update {
                key: token_key(&user_id, &hash),
                update: Update::default().set("used", true),
                condition: Some(Condition::eq("used", false)),
            },
            TxOp::Put {
                item: self.token_item(&user_id, &next_hash, &sid),
                condition: Some(Condition::NotExists),
            },
            TxOp::Check {
                key: session_key(&user_id, &sid),
                condition: Condition::eq("revoked", false),
            },
        ];
        match self.records.transact(ops).await {
            Ok(()) => Ok(self.pair(&user, &sid, next)),
            Err(PortError::TransactionCanceled { failed }) if failed.contains(&0) => {
                // Another request rotated this token first: a reuse.
                self.reuse_detected(&user_id, &sid).await?;
                Err(invalid())
            }
            Err(PortError::TransactionCanceled { .. }) => Err(invalid()),
            Err(e) => Err(e.into()),
        }
    }

    /// The caller of a bearer token: valid signature and claims, an existing active
    /// account and a live session — checked on every request.
    pub async fn authenticate(&self, bearer: &str) -> ServiceResult<Principal> {
        let invalid = || ServiceError::Unauthorized("invalid or expired access token".into());
        let claims = self.tokens.verify(bearer).ok_or_else(invalid)?;
        let sk = session_key(&claims.sub, &claims.sid);
        let (user, session) = tokio::join!(self.stored_user(&claims.sub), self.records.get(&sk));
        let user = user?.ok_or_else(invalid)?.user;
        let session = session?.ok_or_else(invalid)?;
        if !user.is_active {
            return Err(ServiceError::Unauthorized(
                "this account is deactivated".into(),
            ));
        }
        if session.get("revoked") != Some(&Value::Bool(false)) {
            return Err(invalid());
        }
        Ok(Principal {
            user,
            session_id: claims.sid,
        })
    }

    /// End the caller's session: its refresh tokens and access tokens stop working.
    pub async fn logout(&self, who: &Principal) -> ServiceResult<()> {
        self.revoke_session(&who.user.id, &who.session_id).await
    }
}
