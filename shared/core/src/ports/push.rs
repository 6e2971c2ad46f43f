//! The push port: device endpoints and the messages sent to them (SNS mobile push on AWS;
//! where no platform application is configured, and in `synth serve`, a structured log
//! line stands in for the device).

use async_trait::async_trait;

use crate::error::PortResult;

/// What one push message reaching an endpoint came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to the platform (the provider's message id).
    Sent(String),
    /// The endpoint is disabled or gone (the app was uninstalled, the token expired): the
    /// caller forgets it.
    Gone,
}

/// One push message: what a device shows, and the path the app opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    pub link: String,
}

#[async_trait]
pub trait Push: Send + Sync {
    /// Make (or find again) the endpoint of a device token on `platform` (`ios`, `android`,
    /// `web`); `None` where no platform application serves that platform.
    async fn register(&self, platform: &str, token: &str) -> PortResult<Option<String>>;
    /// Send a message to an endpoint made by [`Push::register`].
    async fn send(&self, endpoint: &str, message: &PushMessage) -> PortResult<Delivery>;
    /// Delete an endpoint; deleting one that is gone is not an error.
    async fn remove(&self, endpoint: &str) -> PortResult<()>;
}

/// The push port where no platform is configured: nothing is registered, so nothing is
/// ever sent; the notifier logs what it would have pushed.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPush;

#[async_trait]
impl Push for NoPush {
    async fn register(&self, _platform: &str, _token: &str) -> PortResult<Option<String>> {
        Ok(None)
    }

    async fn send(&self, _endpoint: &str, _message: &PushMessage) -> PortResult<Delivery> {
        Ok(Delivery::Gone)
    }

    async fn remove(&self, _endpoint: &str) -> PortResult<()> {
        Ok(())
    }
}
