//! The `notify` Lambda: SNS completion, approval, ingestion and alert messages → in-app
//! notifications and device pushes.

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use synth_core::notifications::Notifications;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (settings, backends) = synth_function_common::start().await?;
    let notifications = std::sync::Arc::new(Notifications::new(
        backends.records,
        backends.push,
        &settings,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| {
        let notifications = notifications.clone();
        async move {
            let n = fn_notify::handle_sns_event(&notifications, &event.payload).await?;
            tracing::info!(written = n, "SNS event handled");
            Ok::<_, lambda_runtime::Error>(())
        }
    }))
    .await
}
