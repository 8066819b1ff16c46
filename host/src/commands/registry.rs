//! Which commands a guild has: the union of the commands of the features
//! installed there — their manifests', then those they define in the guild
//! (contract 0.1.3 `guild-commands`). Slash commands of the enabled features
//! are registered with Discord per guild (one bulk overwrite), and only when
//! that set changed.

use crate::discord::Discord;
use crate::runtime::Runtime;
use crate::store::{FeatureCommands, GuildFeature, GuildService};
use crate::wit::{Command, CommandOption, OptionKind, Subcommand};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A command and the feature that offers it in a guild.
#[derive(Clone, Debug)]
pub struct OwnedCommand {
    pub feature_id: String,
    pub version: String,
    pub enabled: bool,
    pub command: Command,
}

/// Every command of every feature installed in the guild (`features`), enabled
/// or not (a disabled module's command must still be recognised, to say it is
/// disabled), then the commands features define in the guild (`defined`).
/// When two offer the same name, a manifest's wins over a defined one, then
/// the enabled feature, then the first feature id: the guild sees one command
/// per name.
pub async fn guild_commands(
    runtime: &Runtime,
    features: &[GuildFeature],
    defined: &[FeatureCommands],
) -> Vec<OwnedCommand> {
    let mut features: Vec<&GuildFeature> = features.iter().collect();
    features.sort_by(|a, b| {
        b.enabled
            .cmp(&a.enabled)
            .then(a.feature_id.cmp(&b.feature_id))
    });
    let mut commands: Vec<OwnedCommand> = Vec::new();
    for &gf in &features {
        // One feature whose manifest cannot be read loses its commands; the
        // guild keeps every other feature's.
        let manifest = match runtime.manifest(&gf.feature_id, &gf.version).await {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::error!(guild = gf.guild_id, feature = %gf.feature_id, %error, "skipping a feature's commands");
                continue;
            }
        };
        add(&mut commands, gf, manifest.commands);
    }
    for gf in features {
        if let Some(own) = defined.iter().find(|d| d.feature_id == gf.feature_id) {
            add(&mut commands, gf, own.commands.clone());
        }
    }
    commands
}

/// Adds `gf`'s commands to `commands`, skipping names already taken.
fn add(commands: &mut Vec<OwnedCommand>, gf: &GuildFeature, offered: Vec<Command>) {
    for command in offered {
        if let Some(taken) = commands.iter().find(|c| c.command.name == command.name) {
            tracing::warn!(guild = gf.guild_id, command = %command.name, kept = %taken.feature_id, ignored = %gf.feature_id, "two features offer the same command; keeping one");
            continue;
        }
        commands.push(OwnedCommand {
            feature_id: gf.feature_id.clone(),
            version: gf.version.clone(),
            enabled: gf.enabled,
            command,
        });
    }
}

/// The JSON body of Discord's bulk overwrite of a guild's commands: the slash
/// commands of the enabled features, or none when the guild turned slash off.
pub fn registration(commands: &[OwnedCommand], use_slash_commands: bool) -> Value {
    if !use_slash_commands {
        return json!([]);
    }
    Value::Array(
        commands
            .iter()
            .filter(|c| c.enabled && c.command.slash)
            .map(|c| command_json(&c.command))
            .collect(),
    )
}

fn command_json(c: &Command) -> Value {
    let options: Vec<Value> = if c.subcommands.is_empty() {
        c.options.iter().map(option_json).collect()
    } else {
        c.subcommands.iter().map(subcommand_json).collect()
    };
    let mut command = json!({
        "type": 1,
        "name": c.name,
        "description": c.description,
        "options": options,
        // Guild commands only: no DMs.
        "contexts": [0],
    });
    if let Some(bits) = c.default_permissions {
        // Discord sends and expects permission bit sets as strings.
        command["default_member_permissions"] = json!(bits.to_string());
    }
    command
}

fn subcommand_json(s: &Subcommand) -> Value {
    json!({
        "type": 1,
        "name": s.name,
        "description": s.description,
        "options": s.options.iter().map(option_json).collect::<Vec<_>>(),
    })
}

fn option_json(o: &CommandOption) -> Value {
    let kind = match o.kind {
        OptionKind::Text => 3,
        OptionKind::Integer => 4,
        OptionKind::Boolean => 5,
        OptionKind::User => 6,
        OptionKind::Channel => 7,
        OptionKind::Role => 8,
        OptionKind::Number => 10,
    };
    let mut option = json!({
        "type": kind,
        "name": o.name,
        "description": o.description,
        "required": o.required,
    });
    if !o.choices.is_empty() {
        option["choices"] = o
            .choices
            .iter()
            .map(|c| json!({"name": c, "value": c}))
            .collect();
    }
    option
}

/// Registers the guild's slash commands with Discord when they differ from what
/// was last registered there. Returns whether it registered.
pub async fn sync(runtime: &Runtime, discord: &dyn Discord, guild_id: u64) -> anyhow::Result<bool> {
    // Read from the database, not the control plane: this runs because the
    // database changed, maybe before this process heard of it.
    let store = runtime.store();
    let settings = store.guild_settings(guild_id).await?;
    let commands = guild_commands(
        runtime,
        &store.guild_features(guild_id).await?,
        &store.feature_commands(guild_id).await?,
    )
    .await;
    // A retired guild's commands are taken off Discord: the hosted runner
    // no longer answers them.
    let retired = store
        .guild(guild_id)
        .await?
        .is_some_and(|g| g.service == GuildService::Retired);
    let body = if retired {
        json!([])
    } else {
        registration(&commands, settings.use_slash_commands)
    };
    let hash = hex::encode(Sha256::digest(body.to_string()));
    if store.command_set_hash(guild_id).await?.as_deref() == Some(hash.as_str()) {
        return Ok(false);
    }
    let count = body.as_array().map_or(0, Vec::len);
    discord.overwrite_guild_commands(guild_id, &body).await?;
    store.set_command_set_hash(guild_id, &hash, count).await?;
    tracing::info!(
        guild = guild_id,
        commands = count,
        "registered the guild's slash commands"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(feature: &str, enabled: bool, name: &str, slash: bool) -> OwnedCommand {
        OwnedCommand {
            feature_id: feature.into(),
            version: "1.0.0".into(),
            enabled,
            command: Command {
                name: name.into(),
                description: format!("{name} things"),
                options: vec![CommandOption {
                    name: "who".into(),
                    description: "a member".into(),
                    kind: OptionKind::User,
                    required: false,
                    choices: vec![],
                }],
                subcommands: vec![],
                slash,
                prefix: true,
                default_permissions: Some(0x20),
            },
        }
    }

    #[test]
    fn registers_enabled_slash_commands_in_discords_shape() {
        let commands = [
            owned("xp", true, "rank", true),
            owned("xp", true, "legacy", false),
            owned("tickets", false, "ticket", true),
        ];
        let body = registration(&commands, true);
        assert_eq!(
            body,
            json!([{
                "type": 1, "name": "rank", "description": "rank things", "contexts": [0],
                "default_member_permissions": "32",
                "options": [{"type": 6, "name": "who", "description": "a member", "required": false}],
            }])
        );
        assert_eq!(registration(&commands, false), json!([]));
    }
}
