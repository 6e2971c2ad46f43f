//! The push port on SNS mobile push: one platform endpoint per device token, made under the
//! platform application that serves the token's platform (APNs for `ios`, FCM for `android`
//! and `web`), and messages published to it in each platform's payload.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::ProvideErrorMetadata;
use serde_json::json;
use synth_core::error::PortResult;
use synth_core::{Delivery, PortError, Push, PushMessage};

use crate::error::port_error;

/// The platform applications a deployment has; a platform without one gets no endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushApps {
    /// APNs (`ios` tokens).
    pub apns: Option<String>,
    /// Firebase Cloud Messaging (`android` and `web` tokens).
    pub fcm: Option<String>,
}

impl PushApps {
    /// The application serving `platform`'s tokens.
    pub fn for_platform(&self, platform: &str) -> Option<&str> {
        match platform {
            "ios" => self.apns.as_deref(),
            "android" | "web" => self.fcm.as_deref(),
            _ => None,
        }
    }

    pub fn any(&self) -> bool {
        self.apns.is_some() || self.fcm.is_some()
    }
}

/// A [`Push`] on SNS platform endpoints.
#[derive(Debug, Clone)]
pub struct SnsPush {
    client: Client,
    apps: PushApps,
}

impl SnsPush {
    pub fn new(client: Client, apps: PushApps) -> Self {
        Self { client, apps }
    }

    /// Enable an endpoint again with its current token (a re-registered device whose
    /// endpoint SNS had disabled).
    async fn enable(&self, endpoint: &str, token: &str) -> PortResult<()> {
        self.client
            .set_endpoint_attributes()
            .endpoint_arn(endpoint)
            .attributes("Token", token)
            .attributes("Enabled", "true")
            .send()
            .await
            .map_err(|e| port_error("SetEndpointAttributes", e))?;
        Ok(())
    }
}

/// The endpoint ARN SNS names when refusing to make a second endpoint for a token it has
/// under other attributes ("Endpoint arn:… already exists with the same Token, but
/// different attributes.").
fn existing_endpoint(message: &str) -> Option<&str> {
    let start = message.find("arn:")?;
    let rest = &message[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The message in every platform's payload (`MessageStructure: json`).
fn payload(m: &PushMessage) -> String {
    let apns = json!({ "aps": { "alert": { "title": m.title, "body": m.body } }, "link": m.link });
    let fcm = json!({
        "notification": { "title": m.title, "body": m.body },
        "data": { "link": m.link },
    });
    json!({
        "default": m.body,
        "APNS": apns.to_string(),
        "APNS_SANDBOX": apns.to_string(),
        "GCM": fcm.to_string(),
    })
    .to_string()
}

#[async_trait]
impl Push for SnsPush {
    async fn register(&self, platform: &str, token: &str) -> PortResult<Option<String>> {
        let Some(app) = self.apps.for_platform(platform) else {
            return Ok(None);
        };
        let made = self
            .client
            .create_platform_endpoint()
            .platform_application_arn(app)
            .token(token)
            .send()
            .await;
        match made {
            Ok(out) => {
                let arn = out.endpoint_arn.ok_or_else(|| {
                    PortError::Backend("CreatePlatformEndpoint returned no ARN".into())
                })?;
                Ok(Some(arn))
            }
            Err(e) => {
                let message = e.message().unwrap_or_default().to_owned();
                match existing_endpoint(&message) {
                    Some(arn) if e.code() == Some("InvalidParameter") => {
                        self.enable(arn, token).await?;
                        Ok(Some(arn.to_owned()))
                    }
                    _ => Err(port_error("CreatePlatformEndpoint", e)),
                }
            }
        }
    }

    async fn send(&self, endpoint: &str, message: &PushMessage) -> PortResult<Delivery> {
        let sent = self
            .client
            .publish()
            .target_arn(endpoint)
            .message_structure("json")
            .message(payload(message))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Delivery::Sent(out.message_id.unwrap_or_default())),
            Err(e) if matches!(e.code(), Some("EndpointDisabled" | "NotFound")) => {
                Ok(Delivery::Gone)
            }
            Err(e) => Err(port_error("Publish", e)),
        }
    }

    async fn remove(&self, endpoint: &str) -> PortResult<()> {
        self.client
            .delete_endpoint()
            .endpoint_arn(endpoint)
            .send()
            .await
            .map_err(|e| port_error("DeleteEndpoint", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_map_to_their_applications() {
        let apps = PushApps {
            apns: Some("arn:apns".into()),
            fcm: None,
        };
        assert_eq!(apps.for_platform("ios"), Some("arn:apns"));
        assert_eq!(apps.for_platform("android"), None);
        assert_eq!(apps.for_platform("web"), None);
        assert!(apps.any() && !PushApps::default().any());
    }

    #[test]
    fn the_existing_endpoint_is_read_from_the_refusal() {
        let m = "Invalid parameter: Token Reason: Endpoint arn:aws:sns:us-east-1:1:endpoint/GCM/app/x already exists with the same Token, but different attributes.";
        assert_eq!(
            existing_endpoint(m),
            Some("arn:aws:sns:us-east-1:1:endpoint/GCM/app/x")
        );
        assert_eq!(existing_endpoint("no arn here"), None);
    }

    #[test]
    fn the_payload_carries_every_platform() {
        let p: serde_json::Value = serde_json::from_str(&payload(&PushMessage {
            title: "T".into(),
            body: "B".into(),
            link: "/x".into(),
        }))
        .unwrap();
        assert_eq!(p["default"], "B");
        let gcm: serde_json::Value = serde_json::from_str(p["GCM"].as_str().unwrap()).unwrap();
        assert_eq!(gcm["data"]["link"], "/x");
        let apns: serde_json::Value = serde_json::from_str(p["APNS"].as_str().unwrap()).unwrap();
        assert_eq!(apns["aps"]["alert"]["title"], "T");
    }
}
