//! `synth admin create`: the first administrator, in the embedded store or in DynamoDB.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use synth_core::RecordStore;
use synth_core::RequestContext;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an administrator account.
    Create(CreateArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The administrator's email.
    #[arg(long)]
    email: String,
    /// Read the password from standard input (one line), never from the command line.
    #[arg(long, required = true)]
    password_stdin: bool,
    /// Data folder of `synth serve` (embedded store).
    #[arg(
        long,
        default_value = "./synth-data",
        env = "SYNTH_DATA_DIR",
        conflicts_with = "aws"
    )]
    data_dir: PathBuf,
    /// Write to the deployed DynamoDB table named by SYNTH_TABLE instead (AWS credentials
    /// and region from the usual environment; AWS_ENDPOINT_URL for an emulator).
    #[arg(long)]
    aws: bool,
}

pub async fn run(cmd: AdminCommand) -> Result<(), String> {
    let AdminCommand::Create(args) = cmd;
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| format!("reading the password: {e}"))?;
    let password = password.trim_end_matches(['\n', '\r']);
    let records: Arc<dyn RecordStore> = if args.aws {
        let table = std::env::var("SYNTH_TABLE")
            .map_err(|_| "SYNTH_TABLE must name the stack's table".to_owned())?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
        let cfg = synth_aws::sdk_config(endpoint.as_deref()).await;
        Arc::new(synth_aws::DynamoRecords::new(
            aws_sdk_dynamodb::Client::new(&cfg),
            table,
        ))
    } else {
        std::fs::create_dir_all(&args.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
        let db = synth_embedded::Database::open(&args.data_dir.join("synth.db"))
            .map_err(|e| e.to_string())?;
        Arc::new(synth_embedded::SqliteRecords::new(db))
    };
    let records: Arc<dyn RecordStore> = Arc::new(synth_core::Checked::new(records));
    let ctx = RequestContext {
        request_id: format!("cli-{}", uuid::Uuid::new_v4()),
    };
    let user = synth_core::accounts::create_admin(records.as_ref(), &args.email, password, &ctx)
        .await
        .map_err(|e| e.to_string())?;
    println!("created administrator {} ({})", user.email, user.id);
    Ok(())
}
