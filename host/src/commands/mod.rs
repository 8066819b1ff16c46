//! Commands and components: finding the feature that owns what a member ran,
//! applying the guild's policy (see `policy`), running it in the sandbox and
//! saying what to answer. Transport-free: the gateway, the HTTP interactions
//! endpoint and `townes dev` all come through here and only differ in how they
//! deliver the [`Answer`]. Every command (and component) that reached a feature,
//! or was refused, is told to the dashboard as a `command_executed` live event.

pub mod policy;
pub mod prefix;
pub mod registry;

use crate::discord::Discord;
use crate::discord::custom_id;
use crate::discord::permissions::{SEND_MESSAGES, VIEW_CHANNEL};
use crate::live::{Live, LiveEvent, LiveKind};
use crate::runtime::{InvokeError, Outcome, Runtime};
use crate::store::GuildPolicy;
use crate::wit::{
    CommandArgument, CommandInvocation, CommandSource, ComponentInteraction, InteractionKind,
    Member, Reply,
};
use policy::{Cooldowns, Refusal};
use std::sync::Arc;
use std::time::Duration;

/// What a member ran, as the transport received it.
#[derive(Clone, Debug)]
pub struct CommandCall {
    pub guild_id: u64,
    pub channel_id: u64,
    pub invoker: Member,
    /// The member's effective permissions in the channel.
    pub invoker_permissions: u64,
    /// The bot's effective permissions in the channel, when the transport knows
    /// them (interactions carry them; the gateway computes them from its cache).
    pub bot_permissions: Option<u64>,
    pub name: String,
    pub input: Input,
}

#[derive(Clone, Debug)]
pub enum Input {
    /// Discord parsed the options already.
    Slash {
        subcommand: Option<String>,
        arguments: Vec<CommandArgument>,
    },
    /// The text after the command name, parsed by the command's options here.
    Prefix { prefix: String, text: String },
}

/// A click, a menu choice or a modal submit.
#[derive(Clone, Debug)]
pub struct ComponentCall {
    pub guild_id: u64,
    pub channel_id: u64,
    pub invoker: Member,
    /// The member's effective permissions in the channel.
    pub invoker_permissions: u64,
    pub kind: InteractionKind,
    /// As Discord carries it: namespaced by the feature (see `custom_id`).
    pub custom_id: String,
    pub values: Vec<String>,
    pub fields: Vec<(String, String)>,
    pub message_id: Option<u64>,
}

/// What to answer the member.
#[derive(Debug)]
pub enum Answer {
    Reply {
        feature_id: String,
        reply: Reply,
    },
    /// The command did not run; the text says why and what to do.
    Refused(Refusal),
    /// It ran and failed; the text is safe to show the member.
    Failed {
        feature_id: String,
        message: String,
    },
    /// Not a command here (a prefix message naming no command): say nothing.
    Silent,
}

impl Answer {
    /// The text of a refusal or failure, for transports that post it.
    pub fn notice(&self) -> Option<String> {
        match self {
            Answer::Refused(refusal) => Some(refusal.to_string()),
            Answer::Failed { message, .. } => Some(message.clone()),
            Answer::Reply { .. } | Answer::Silent => None,
        }
    }
}

/// Routes commands and components to features under guild policy.
pub struct Commands {
    runtime: Arc<Runtime>,
    discord: Arc<dyn Discord>,
    cooldowns: Cooldowns,
    live: Live,
}

impl Commands {
    /// `live` hears a `command_executed` event for every command and component.
    /// Cooldowns are shared through the runtime's [`Runtime::shared_limits`].
    pub fn new(runtime: Arc<Runtime>, discord: Arc<dyn Discord>, live: Live) -> Self {
        Commands {
            cooldowns: Cooldowns::new(runtime.shared_limits().clone()),
            runtime,
            discord,
            live,
        }
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Runs a slash or prefix command under the guild's policy, and tells the
    /// dashboard (a prefix message naming no command is chat: nothing is told).
    pub async fn command(&self, call: CommandCall) -> Answer {
        let mut executed = Executed {
            guild_id: call.guild_id,
            channel_id: call.channel_id,
            user_id: call.invoker.user.id,
            command: call.name.clone(),
            feature_id: None,
            source: match call.input {
                Input::Slash { .. } => "slash",
                Input::Prefix { .. } => "prefix",
            },
        };
        let answer = match self.try_command(call, &mut executed.feature_id).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::error!(%error, "could not run a command");
                Answer::Failed {
                    feature_id: String::new(),
                    message: "Something went wrong on our side; please try again in a moment."
                        .into(),
                }
            }
        };
        if executed.feature_id.is_some() || !matches!(answer, Answer::Silent) {
            self.live.publish(executed.event(outcome_of(&answer)));
        }
        answer
    }

    /// Sets `owner` to the feature owning the command as soon as it is known.
    async fn try_command(
        &self,
        call: CommandCall,
        owner: &mut Option<String>,
    ) -> anyhow::Result<Answer> {
        let guild_id = call.guild_id;
        let policy = self.runtime.store().guild_policy(guild_id).await?;
        let settings = &policy.settings;
        let source = match call.input {
            Input::Slash { .. } => CommandSource::Slash,
            Input::Prefix { .. } => CommandSource::Prefix,
        };
        if source == CommandSource::Prefix
            && settings.use_slash_commands
            && !settings.allow_prefix_fallback
        {
            return Ok(Answer::Silent);
        }
        let commands =
            registry::guild_commands(&self.runtime, &policy.features, &policy.feature_commands)
                .await;
        let owned = commands.into_iter().find(|c| {
            c.command.name == call.name
                && match source {
                    CommandSource::Slash => c.command.slash,
                    CommandSource::Prefix => c.command.prefix,
                }
        });
        let Some(owned) = owned else {
            return Ok(match source {
                CommandSource::Prefix => Answer::Silent,
                CommandSource::Slash => Answer::Refused(Refusal::Unknown { command: call.name }),
            });
        };
        *owner = Some(owned.feature_id.clone());
        if !owned.enabled {
            return Ok(Answer::Refused(Refusal::Disabled));
        }
        let (subcommand, arguments, reply_needs) = match call.input {
            Input::Slash {
                subcommand,
                arguments,
            } => (subcommand, arguments, 0),
            Input::Prefix { prefix, text } => {
                match prefix::arguments(&prefix, &owned.command, &text) {
                    Ok((sub, args)) => (sub, args, VIEW_CHANNEL | SEND_MESSAGES),
                    Err(message) => return Ok(Answer::Refused(Refusal::Usage { message })),
                }
            }
        };

        if let Err(refusal) = self
            .member_may_run(
                &policy,
                &call.invoker,
                call.invoker_permissions,
                (&owned.feature_id, &call.name),
                owned.command.default_permissions,
            )
            .await?
        {
            return Ok(Answer::Refused(refusal));
        }

        if let Some(held) = call.bot_permissions {
            let manifest = self
                .runtime
                .manifest(&owned.feature_id, &owned.version)
                .await?;
            let needed = policy::bot_needs(&manifest.capabilities, reply_needs);
            if let Err(refusal) = policy::bot_missing(&call.name, needed, held) {
                return Ok(Answer::Refused(refusal));
            }
        }

        let cooldown = policy
            .cooldown(&call.name)
            .unwrap_or(settings.global_cooldown_seconds);
        if let Err(refusal) = self
            .cooldowns
            .start_now(
                guild_id,
                call.invoker.user.id,
                &call.name,
                Duration::from_secs(cooldown.into()),
            )
            .await
        {
            return Ok(Answer::Refused(refusal));
        }

        let invocation = CommandInvocation {
            name: call.name.clone(),
            source,
            subcommand,
            arguments,
            invoker: call.invoker,
            channel_id: call.channel_id,
        };
        let outcome = self
            .runtime
            .command(
                guild_id,
                &owned.feature_id,
                invocation,
                call.invoker_permissions,
            )
            .await;
        Ok(answer(&format!("`{}`", call.name), outcome))
    }

    /// Routes a component interaction to the feature whose namespace its custom
    /// id carries, and tells the dashboard (as a `command_executed` event whose
    /// `command` is the feature's own custom id and `source` is `component`).
    pub async fn component(&self, call: ComponentCall) -> Answer {
        let Some((feature_id, own_id)) = custom_id::split(&call.custom_id)
            .map(|(feature_id, own_id)| (feature_id.to_string(), own_id.to_string()))
        else {
            return Answer::Silent;
        };
        let executed = Executed {
            guild_id: call.guild_id,
            channel_id: call.channel_id,
            user_id: call.invoker.user.id,
            command: own_id.clone(),
            feature_id: Some(feature_id.clone()),
            source: "component",
        };
        match self.try_component(call, &feature_id, own_id).await {
            Ok(answer) => {
                self.live.publish(executed.event(outcome_of(&answer)));
                answer
            }
            Err(error) => {
                tracing::error!(%error, "could not look up a component's feature");
                self.live.publish(executed.event("failed"));
                Answer::Silent
            }
        }
    }

    async fn try_component(
        &self,
        call: ComponentCall,
        feature_id: &str,
        own_id: String,
    ) -> anyhow::Result<Answer> {
        let policy = self.runtime.store().guild_policy(call.guild_id).await?;
        if !policy.feature(feature_id).is_some_and(|gf| gf.enabled) {
            return Ok(Answer::Refused(Refusal::Disabled));
        }
        // A click is held to the roles the guild requires for the feature, and
        // to the guild's cooldown, like the feature's commands.
        if let Err(refusal) = self
            .member_may_run(
                &policy,
                &call.invoker,
                call.invoker_permissions,
                (feature_id, &own_id),
                None,
            )
            .await?
        {
            return Ok(Answer::Refused(refusal));
        }
        let cooldown = policy.settings.global_cooldown_seconds;
        if let Err(refusal) = self
            .cooldowns
            .start_now(
                call.guild_id,
                call.invoker.user.id,
                &format!("{feature_id}:{own_id}"),
                Duration::from_secs(cooldown.into()),
            )
            .await
        {
            return Ok(Answer::Refused(refusal));
        }
        let interaction = ComponentInteraction {
            kind: call.kind,
            custom_id: own_id,
            values: call.values,
            fields: call.fields,
            invoker: call.invoker,
            channel_id: call.channel_id,
            message_id: call.message_id,
        };
        let outcome = self
            .runtime
            .component(
                call.guild_id,
                feature_id,
                interaction,
                call.invoker_permissions,
            )
            .await;
        Ok(answer("This", outcome))
    }
}

impl Commands {
    /// The guild's role rules for a feature or one of its commands or
    /// components (`names`: the feature id and the command or custom id).
    async fn member_may_run(
        &self,
        guild: &GuildPolicy,
        invoker: &Member,
        invoker_permissions: u64,
        (feature_id, name): (&str, &str),
        default_permissions: Option<u64>,
    ) -> anyhow::Result<Result<(), Refusal>> {
        let allowed_roles: Vec<u64> = guild
            .role_permissions
            .iter()
            .filter(|p| p.command_group == feature_id || p.command_group == name)
            .map(|p| p.role_id)
            .collect();
        let guild_roles = self.discord.roles(guild.guild_id).await.unwrap_or_default();
        let is_owner = guild.owner_id() == Some(invoker.user.id);
        Ok(policy::member_may_run(
            name,
            &invoker.roles,
            invoker_permissions,
            is_owner,
            &allowed_roles,
            &guild_roles,
            default_permissions,
        ))
    }
}

/// A command or component as the dashboard hears of it.
struct Executed {
    guild_id: u64,
    channel_id: u64,
    user_id: u64,
    command: String,
    /// `None` until a feature owning the command is found.
    feature_id: Option<String>,
    /// `slash`, `prefix` or `component`.
    source: &'static str,
}

impl Executed {
    /// The `command_executed` event, ids as strings.
    fn event(self, outcome: &'static str) -> LiveEvent {
        LiveEvent::new(
            self.guild_id,
            LiveKind::CommandExecuted,
            serde_json::json!({
                "command": self.command,
                "feature": self.feature_id,
                "user_id": self.user_id.to_string(),
                "channel_id": self.channel_id.to_string(),
                "outcome": outcome,
                "source": self.source,
            }),
        )
    }
}

/// `ok` (it ran, with or without a reply), `refused` (policy, a disabled or
/// paused feature, bad arguments) or `failed` (it ran and failed, or the host did).
fn outcome_of(answer: &Answer) -> &'static str {
    match answer {
        Answer::Reply { .. } | Answer::Silent => "ok",
        Answer::Refused(_) => "refused",
        Answer::Failed { .. } => "failed",
    }
}

/// The answer an invocation's outcome gives the member; `subject` names what ran
/// ("`rank`", or "This" for a component). Details of failures go to the host log,
/// not to the channel.
fn answer(subject: &str, outcome: Outcome) -> Answer {
    let feature_id = outcome.feature_id;
    match outcome.result {
        Ok(Some(reply)) => Answer::Reply { feature_id, reply },
        Ok(None) => Answer::Silent,
        Err(InvokeError::NotEnabled(_)) => Answer::Refused(Refusal::Disabled),
        Err(InvokeError::BreakerOpen { until }) => Answer::Refused(Refusal::Paused { until }),
        Err(error) => {
            let message = match &error {
                InvokeError::Feature(e) => format!(
                    "{subject} could not finish: {}",
                    crate::capabilities::describe_error(e)
                ),
                InvokeError::Trap { .. } | InvokeError::Timeout(_) => {
                    format!("{subject} was stopped: it exceeded its limits.")
                }
                InvokeError::Busy(_) => {
                    "The bot is busy in this server right now; please try again in a moment.".into()
                }
                _ => "Something went wrong on our side; please try again in a moment.".into(),
            };
            Answer::Failed {
                feature_id,
                message,
            }
        }
    }
}
