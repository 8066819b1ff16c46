//! The offline playground: an in-process Discord simulator with one guild, the
//! given features installed and enabled there, and the platform connected to it
//! through the same gateway and REST code as for real Discord. `townes serve`
//! (without a token) plays a short script in it; `townes dev` lets a person act
//! in it.
//!
//! The simulated world lives only as long as the process, but the database
//! outlives it: the ids the world was built with are kept in
//! `<data dir>/playground.json`, and the next run rebuilds the same guild,
//! members and roles with them, so the features' data (XP, tickets, ...) and
//! the tenant carry on from one run to the next.

use super::Settings;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use townes::discord::LocalDiscord;
use townes::grants::Approval;
use townes::marketplace::{Marketplace, Publisher};
use townes::platform::Connection;
use townes::store::{Guild, Store};
use townes::wit::Manifest;
use townes_discord_sim::{GuildSetup, SimConfig, SimMessage, Simulator, permissions};

/// The simulated world and who is in it.
pub struct Playground {
    pub sim: Simulator,
    pub guild: GuildSetup,
    /// The guild's owner, holding Admin.
    pub ada: u64,
    pub bob: u64,
    /// Not a member yet: joins during the script (or on `join` in `townes dev`).
    pub carol: u64,
    /// The guild's roles by name (`Admin`, `Member`, the bot's), highest first.
    pub roles: Vec<(u64, String)>,
    pub features: Vec<Manifest>,
}

impl Playground {
    /// Starts the simulator, builds the guild and installs and enables
    /// `components` there. Returns how to connect to it.
    pub async fn start(
        settings: &Settings,
        store: &Store,
        components: &[PathBuf],
    ) -> anyhow::Result<(Playground, Connection)> {
        let world_file = settings.data_dir.join(WORLD_FILE);
        let earlier = read_world(&world_file);
        let config = SimConfig {
            first_ids: earlier.clone().unwrap_or_default(),
            ..SimConfig::default()
        };
        let bot_name = config.bot_name.clone();
        let sim = Simulator::start(config)
            .await
            .context("starting the Discord simulator")?;
        let ada = sim.create_user("ada");
        let bob = sim.create_user("bob");
        let carol = sim.create_user("carol");
        let guild = sim.create_guild("Playground", ada);
        // The bot's role sits above Member (so it can hand it out) and below Admin,
        // as a server admin would arrange it.
        let bot_role = sim.create_role(
            guild.guild_id,
            "Townes",
            permissions::MANAGE_ROLES
                | permissions::SEND_MESSAGES
                | permissions::VIEW_CHANNEL
                | permissions::EMBED_LINKS,
            5,
        );
        sim.give_role(guild.guild_id, sim.bot_user_id(), bot_role);
        let member_role = sim.create_role(guild.guild_id, "Member", 0, 2);
        let admin_role = sim.create_role(guild.guild_id, "Admin", permissions::ADMINISTRATOR, 10);
        sim.give_role(guild.guild_id, ada, admin_role);
        sim.give_role(guild.guild_id, ada, member_role);
        sim.member_join(guild.guild_id, bob).await;
        // In the order they were minted, which is the order the calls above
        // ask for them on the next run.
        let world = vec![
            ada,
            bob,
            carol,
            guild.guild_id,
            guild.general_channel_id,
            guild.bot_role_id,
            bot_role,
            member_role,
            admin_role,
        ];
        match earlier {
            Some(earlier) if earlier == world => println!(
                "the playground continues: same guild, members and feature data as the last run ({})",
                world_file.display()
            ),
            _ => {
                std::fs::write(&world_file, serde_json::to_string(&world)?)
                    .with_context(|| format!("writing {}", world_file.display()))?;
                println!(
                    "a new playground; the next run continues it ({} keeps its ids)",
                    world_file.display()
                );
            }
        }

        store
            .upsert_guild(&Guild::new(guild.guild_id, "Playground", ada))
            .await?;
        let installer = super::runtime_with(settings, Arc::new(LocalDiscord::new())).await?;
        let tenant = store.create_tenant(ada, Some("Playground owner")).await?;
        store
            .set_guild_tenant(guild.guild_id, Some(&tenant.id))
            .await?;
        let market = Marketplace::new(&installer, "playground");
        let mut features = Vec::new();
        for path in components {
            let wasm =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let (_, manifest) = market
                .install(&wasm, &Publisher::Platform)
                .await
                .with_context(|| format!("installing {}", path.display()))?;
            market
                .enable(
                    guild.guild_id,
                    &manifest.id,
                    Some(&manifest.version),
                    Approval::everything_requested(&manifest.capabilities),
                )
                .await?;
            let config = super::demo::playground_config(
                &manifest.default_config,
                guild.general_channel_id,
                member_role,
            );
            if let Some(config) = config {
                market
                    .set_config(guild.guild_id, &manifest.id, config)
                    .await?;
            }
            println!(
                "installed {} {} and enabled it in \"Playground\"",
                manifest.id, manifest.version
            );
            features.push(manifest);
        }
        let connection = Connection {
            live: super::live(settings).await?,
            limits: super::shared_limits(settings).await?,
            ..Connection::new(sim.token(), Some(sim.base_url()))
        };
        let roles = vec![
            (admin_role, "Admin".to_string()),
            (bot_role, "Townes".to_string()),
            (member_role, "Member".to_string()),
            // Discord gives every bot a managed role named after it.
            (guild.bot_role_id, bot_name),
        ];
        let playground = Playground {
            sim,
            guild,
            ada,
            bob,
            carol,
            roles,
            features,
        };
        Ok((playground, connection))
    }

    pub fn general(&self) -> u64 {
        self.guild.general_channel_id
    }

    /// The playground's users by name, the owner first.
    pub fn users(&self) -> [(&'static str, u64); 3] {
        [("ada", self.ada), ("bob", self.bob), ("carol", self.carol)]
    }

    pub fn name_of(&self, user_id: u64) -> &'static str {
        match user_id {
            id if id == self.ada => "ada",
            id if id == self.bob => "bob",
            id if id == self.carol => "carol",
            _ => "someone",
        }
    }

    /// `text` with the playground's members' mentions shown as `@name`.
    pub fn readable(&self, text: &str) -> String {
        [self.ada, self.bob, self.carol]
            .into_iter()
            .fold(text.to_string(), |text, id| {
                text.replace(&format!("<@{id}>"), &format!("@{}", self.name_of(id)))
            })
    }

    /// Waits until the bot is connected and the guild is announced.
    pub async fn ready(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.sim.wait_for_ready(1, Duration::from_secs(30)).await,
            "the platform did not connect to the simulator within 30 s"
        );
        Ok(())
    }

    /// Prints the bot's messages in #general posted after `seen` of them, waiting
    /// until it has been quiet for a moment. Returns how many the bot has now.
    pub async fn print_new_bot_messages(&self, seen: usize) -> usize {
        let bot = self.sim.bot_user_id();
        let mut quiet_since = tokio::time::Instant::now();
        let mut count = seen;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let messages: Vec<SimMessage> = self
                .sim
                .messages(self.general())
                .into_iter()
                .filter(|m| m.author_id == bot)
                .collect();
            if messages.len() > count {
                for m in &messages[count..] {
                    println!(
                        "    bot → #general: {}",
                        self.readable(&describe(&m.content, &m.embeds))
                    );
                }
                count = messages.len();
                quiet_since = tokio::time::Instant::now();
            }
            let now = tokio::time::Instant::now();
            if now.duration_since(quiet_since) > Duration::from_millis(400) || now > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a slash command as `user` and prints the bot's answer.
    pub async fn slash(&self, user: u64, command: &str, options: serde_json::Value) {
        println!("▶ {} runs /{command}", self.name_of(user));
        let interaction = self
            .sim
            .slash(self.guild.guild_id, self.general(), user, command, options)
            .await;
        match self
            .sim
            .interaction_response(interaction.id, Duration::from_secs(5))
            .await
        {
            Some(response) => {
                let data = response.edits.last().unwrap_or(&response.data);
                let embeds = data["embeds"].as_array().cloned().unwrap_or_default();
                let ephemeral = data["flags"].as_u64().unwrap_or(0) & 64 != 0;
                println!(
                    "    bot answers{}: {}",
                    if ephemeral { " (only they see it)" } else { "" },
                    self.readable(&describe(data["content"].as_str().unwrap_or(""), &embeds))
                );
            }
            None => println!("    (no answer within 5 s)"),
        }
    }
}

/// Where the playground keeps its world's ids, in the data directory.
pub const WORLD_FILE: &str = "playground.json";

/// The ids an earlier run built the world with; `None` on a first run, or
/// when the file is unreadable (a new world is built and the file replaced).
fn read_world(file: &std::path::Path) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(file).ok()?;
    match serde_json::from_str(&text) {
        Ok(ids) => Some(ids),
        Err(error) => {
            tracing::warn!(%error, file = %file.display(), "unreadable playground ids; starting a new playground");
            None
        }
    }
}

/// A message in one line: its text and each embed's title and description.
pub fn describe(content: &str, embeds: &[serde_json::Value]) -> String {
    let mut line = content.to_string();
    for embed in embeds {
        let part = [embed["title"].as_str(), embed["description"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" — ");
        if !line.is_empty() {
            line.push_str(" | ");
        }
        line.push_str(&format!("[embed] {}", part.replace('\n', " / ")));
    }
    line
}

/// The script `townes serve` plays: carol joins, members chat (seven messages
/// each: at least 7 × 15 XP, so both reach level 1 whatever the roll), and every
/// slash command without required options is run.
pub async fn play(playground: &Playground) -> anyhow::Result<()> {
    playground.ready().await?;
    let (guild, general) = (playground.guild.guild_id, playground.general());
    println!("▶ carol joins");
    playground.sim.member_join(guild, playground.carol).await;
    let mut seen = playground.print_new_bot_messages(0).await;
    let script = [
        (playground.ada, "hi carol, welcome!"),
        (playground.carol, "thanks ada, nice place"),
        (playground.ada, "the xp feature counts what we say"),
        (playground.carol, "let's see"),
        (playground.ada, "level up soon?"),
        (playground.carol, "almost there"),
        (playground.ada, "one more"),
        (playground.carol, "and another"),
        (playground.ada, "done"),
        (playground.carol, "GG"),
        (playground.ada, "brb"),
        (playground.carol, "see you"),
    ];
    for (user, text) in script {
        println!("▶ {} says {text:?}", playground.name_of(user));
        playground.sim.say(guild, general, user, text).await;
        seen = playground.print_new_bot_messages(seen).await;
    }
    for manifest in &playground.features {
        for command in manifest.commands.iter().filter(|c| {
            c.slash && c.subcommands.is_empty() && c.options.iter().all(|o| !o.required)
        }) {
            playground
                .slash(playground.carol, &command.name, serde_json::json!([]))
                .await;
        }
    }
    Ok(())
}
