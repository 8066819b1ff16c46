//! `townes key …`: API keys without a browser, for operators and scripts (the
//! fuzz run, a dashboard's server side). A key made here is the same as one from
//! `POST /api/keys`: it belongs to the owner's tenant (created if missing), its
//! secret is shown once and only its hash is stored, and making it is audited
//! (actor `cli`). Like a Discord login, it claims the unclaimed guilds the
//! owner owns for that tenant.

use super::{Settings, open_store};
use anyhow::Context as _;
use clap::Subcommand;
use townes::api::auth::issue_api_key;
use townes::store::{NewAuditEntry, Store, Tenant};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create an API key for the tenant of a Discord user (the tenant is created
    /// if missing) and print its secret, once.
    Create {
        /// The tenant owner's Discord user id.
        #[arg(long)]
        owner: u64,
        /// What the key is for; 1 to 100 characters.
        #[arg(long, default_value = "command line")]
        name: String,
        /// Print `{"key": {…}, "secret": "tdk_…", "tenant_id": "…"}`.
        #[arg(long)]
        json: bool,
    },
    /// The API keys of a Discord user's tenant, revoked ones included, newest first.
    List {
        #[arg(long)]
        owner: u64,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one of a Discord user's tenant's keys: it stops working at once.
    Revoke {
        #[arg(long)]
        owner: u64,
        /// The key's id (the part between `tdk_` and the next `_`).
        key_id: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: KeyCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        KeyCommand::Create { owner, name, json } => {
            let name = name.trim();
            anyhow::ensure!(
                !name.is_empty() && name.chars().count() <= 100,
                "--name must be 1 to 100 characters"
            );
            let tenant = store.create_tenant(owner, None).await?;
            let claimed = store.claim_owned_guilds(owner, &tenant.id).await?;
            let (key, secret) = issue_api_key(&store, &tenant.id, name, "cli".into()).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "key": key,
                        "secret": secret,
                        "tenant_id": tenant.id,
                        "claimed_guilds": claimed.iter().map(u64::to_string).collect::<Vec<_>>(),
                    })
                );
                return Ok(());
            }
            println!(
                "created API key {} ({:?}) for tenant {} (owner {owner})",
                key.id, key.name, tenant.id
            );
            for guild in &claimed {
                println!("claimed guild {guild} for the tenant");
            }
            println!("secret (shown once; send as `Authorization: Bearer <secret>`):");
            println!("{secret}");
        }
        KeyCommand::List { owner, json } => {
            let Some(tenant) = tenant_of(&store, owner, json).await? else {
                return Ok(());
            };
            let keys = store.api_keys(&tenant.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            if keys.is_empty() {
                println!("tenant {} has no API keys", tenant.id);
            }
            for k in keys {
                let state = match (k.revoked_at, k.last_used_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) => format!("last used {at}"),
                    (None, None) => "never used".into(),
                };
                println!("{}  {:?}  created {}, {state}", k.id, k.name, k.created_at);
            }
        }
        KeyCommand::Revoke {
            owner,
            key_id,
            json,
        } => {
            let tenant = store
                .tenant_by_owner(owner)
                .await?
                .with_context(|| format!("user {owner} has no tenant, so no keys"))?;
            anyhow::ensure!(
                store.revoke_api_key(&tenant.id, &key_id).await?,
                "tenant {} has no live API key {key_id}; `townes key list --owner {owner}` shows its keys",
                tenant.id
            );
            store
                .audit(&NewAuditEntry {
                    guild_id: None,
                    actor: "cli".into(),
                    action: "api_key.revoked".into(),
                    feature_id: None,
                    details: serde_json::json!({ "key_id": key_id }),
                })
                .await?;
            if json {
                println!("{}", serde_json::json!({ "revoked": key_id }));
            } else {
                println!("revoked API key {key_id}");
            }
        }
    }
    Ok(())
}

/// The owner's tenant; `None` (after saying so) when there is none.
async fn tenant_of(store: &Store, owner: u64, json: bool) -> anyhow::Result<Option<Tenant>> {
    let tenant = store.tenant_by_owner(owner).await?;
    if tenant.is_none() {
        if json {
            println!("[]");
        } else {
            println!("user {owner} has no tenant, so no keys");
        }
    }
    Ok(tenant)
}
