//! The `admin` Lambda: the admin routes of the Synth API behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), synth_function_common::Error> {
    synth_function_common::run_http(synth_api::ResourceGroup::Admin).await
}
