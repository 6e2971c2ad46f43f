//! The accounts service itself, below HTTP, on the embedded backends (SQLite records, a
//! folder of objects, the in-process topic): one module per concern of
//! `synth_core::accounts`. auth.rs runs the same flows over HTTP on both families.
//!
//! They live here, not beside the service, because a dev-dependency of synth-core on
//! synth-embedded would be a cycle; this crate has both.

mod admin;
mod erasure;
mod login;
mod profile;
mod registration;
mod sessions;

use synth_core::accounts::{Accounts, ClientId, Principal, Role, TokenPair, User};
use synth_core::{Backends, RequestContext, ServiceError, Settings};
use synth_tests::Family;

pub const PASSWORD: &str = "a perfectly fine passphrase";

/// The service over a fresh embedded family.
pub struct Env {
    pub accounts: Accounts,
    pub family: Family,
}

impl Env {
    pub async fn new() -> Self {
        let family = synth_tests::embedded::family().await;
        let mut settings = Settings::for_tests();
        settings.login_max_attempts = 3;
        let b = &family.backends;
        let accounts = Accounts::new(
            b.records.clone(),
            b.objects.clone(),
            b.topic.clone(),
            &settings,
        );
        Self { accounts, family }
    }

    /// A fresh service with `email` signed up: the service, the account, the caller and
    /// its tokens.
    pub async fn with_user(email: &str) -> (Self, User, Principal, TokenPair) {
        let env = Self::new().await;
        let (user, who, pair) = env.signed_up(email).await;
        (env, user, who, pair)
    }

    /// A fresh service with an administrator (`root@example.com`, logged in) and `email`
    /// signed up: the service, the administrator, the account and its tokens.
    pub async fn with_admin_and_user(email: &str) -> (Self, Principal, User, TokenPair) {
        let env = Self::new().await;
        let admin = env.admin("root@example.com").await;
        let (user, _, pair) = env.signed_up(email).await;
        (env, admin, user, pair)
    }

    pub fn backends(&self) -> &Backends {
        &self.family.backends
    }

    /// Register `email` and log in from `client`: the account, the caller and its tokens.
    pub async fn signed_up(&self, email: &str) -> (User, Principal, TokenPair) {
        let client = ClientId::new("198.51.100.1");
        let user = self
            .accounts
            .register(email, PASSWORD, Some("Ada".into()), &client)
            .await
            .expect("registers");
        let (who, pair) = self.logged_in(email).await;
        (user, who, pair)
    }

    /// Log `email` in from its owner's client: the caller and its tokens.
    pub async fn logged_in(&self, email: &str) -> (Principal, TokenPair) {
        let client = ClientId::new("198.51.100.1");
        let pair = self
            .accounts
            .login(email, PASSWORD, &client)
            .await
            .expect("logs in");
        let who = self
            .accounts
            .authenticate(&pair.access_token)
            .await
            .expect("a fresh access token authenticates");
        (who, pair)
    }

    /// The account of `email` as stored now (read by logging in).
    pub async fn account(&self, email: &str) -> User {
        self.logged_in(email).await.0.user
    }

    /// An administrator, created as the command line does, and logged in.
    pub async fn admin(&self, email: &str) -> Principal {
        let records = self.backends().records.clone();
        let u = synth_core::accounts::create_admin(records.as_ref(), email, PASSWORD, &ctx())
            .await
            .expect("creates the admin");
        assert_eq!(u.role, Role::Admin);
        self.logged_in(email).await.0
    }
}

pub fn ctx() -> RequestContext {
    RequestContext {
        request_id: "req-test".into(),
    }
}

/// Whether an error is a refusal of `field`.
pub fn refuses_field(e: &ServiceError, field: &str) -> bool {
    matches!(e, ServiceError::Validation(_, d) if d["field"] == field)
}
