//! `townes operator …`: the platform's operators, who reach the `/admin`
//! routes with their own tokens (ADR 0019). Only whoever runs `townes` on the
//! platform's database can make one: there is no route that does. The token
//! is shown once; only its hash is stored. Each change is audited (actor
//! `cli`).

use super::{Settings, open_store};
use clap::Subcommand;
use townes::api::auth::operator::issue_operator;
use townes::store::NewAuditEntry;

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Make an operator and print their token (`tdo_…`), once.
    Add {
        /// Who it is, for the audit log; 1 to 100 characters.
        name: String,
        /// Print `{"operator": {…}, "token": "tdo_…"}`.
        #[arg(long)]
        json: bool,
    },
    /// Every operator, revoked ones included, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an operator: their token stops working at once.
    Revoke {
        /// The operator's id (the part between `tdo_` and the next `_`).
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: OperatorCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        OperatorCommand::Add { name, json } => {
            let (operator, token) = issue_operator(&store, name.trim()).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "operator": operator, "token": token })
                );
                return Ok(());
            }
            println!("operator {} ({:?}) added", operator.id, operator.name);
            println!("token (shown once; send as `Authorization: Bearer <token>` to /admin):");
            println!("{token}");
        }
        OperatorCommand::List { json } => {
            let operators = store.operators().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&operators)?);
                return Ok(());
            }
            if operators.is_empty() {
                println!("no operators; add one with `townes operator add NAME`");
            }
            for o in operators {
                let state = match (o.revoked_at, o.last_used_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) => format!("last used {at}"),
                    (None, None) => "never used".into(),
                };
                println!("{}  {:?}  added {}, {state}", o.id, o.name, o.created_at);
            }
        }
        OperatorCommand::Revoke { id, json } => {
            anyhow::ensure!(
                store.revoke_operator(&id).await?,
                "no live operator {id}; `townes operator list` shows them"
            );
            store
                .audit(&NewAuditEntry {
                    guild_id: None,
                    actor: "cli".into(),
                    action: "operator.revoked".into(),
                    feature_id: None,
                    details: serde_json::json!({ "operator_id": id }),
                })
                .await?;
            if json {
                println!("{}", serde_json::json!({ "revoked": id }));
            } else {
                println!("revoked operator {id}");
            }
        }
    }
    Ok(())
}
