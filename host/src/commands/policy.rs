//! Guild policy, applied before a command runs: the module must be enabled, the
//! member must hold a role the guild allows for it (or a higher one) or else the
//! command's default permissions, the command must be off cooldown for them, and
//! the bot must hold the Discord permissions the feature needs in that channel.
//! Every refusal is a message the member sees, with what to do about it.

use crate::discord::Role;
use crate::discord::permissions::{self, ADMINISTRATOR};
use crate::shared_limits::{SharedLimits, Verdict};
use crate::wit::{Capability, CapabilityRequest};
use std::fmt;
use std::time::{Duration, Instant};

/// Why a command did not run, as the member is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The owning feature is installed but disabled in this guild.
    Disabled,
    /// The circuit breaker paused the feature after repeated failures.
    Paused {
        until: chrono::DateTime<chrono::Utc>,
    },
    /// The member lacks the role or permission; `needs` says which.
    NotAllowed {
        command: String,
        needs: String,
    },
    Cooldown {
        seconds_left: u64,
    },
    /// The bot lacks Discord permissions in the channel.
    BotMissing {
        command: String,
        permissions: Vec<String>,
    },
    /// No enabled or installed feature offers this command here.
    Unknown {
        command: String,
    },
    /// The command was given arguments it cannot use.
    Usage {
        message: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Disabled => {
                f.write_str("This module is currently disabled. Enable it in the dashboard.")
            }
            Refusal::Paused { until } => write!(
                f,
                "This module is paused after repeated errors and resumes <t:{}:R>. The server's admins can see why in the audit log.",
                until.timestamp()
            ),
            Refusal::NotAllowed { command, needs } => {
                write!(
                    f,
                    "You don't have permission to use `{command}`: it needs {needs}."
                )
            }
            Refusal::Cooldown { seconds_left } => write!(
                f,
                "Please wait {seconds_left} second{} before using this command again.",
                if *seconds_left == 1 { "" } else { "s" }
            ),
            Refusal::BotMissing {
                command,
                permissions,
            } => write!(
                f,
                "I can't run `{command}` here: I'm missing the {} permission{} in this channel. A server admin can grant {} to my role in Server Settings → Roles, or in this channel's permission settings.",
                permissions
                    .iter()
                    .map(|p| format!("**{p}**"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if permissions.len() == 1 { "" } else { "s" },
                if permissions.len() == 1 { "it" } else { "them" },
            ),
            Refusal::Unknown { command } => write!(
                f,
                "`{command}` is not available in this server any more. It may take a moment for Discord to update the command list."
            ),
            Refusal::Usage { message } => f.write_str(message),
        }
    }
}

/// Whether a member may run a command.
///
/// `allowed_roles` are the roles the guild's [`RolePermission`]s list for the
/// command's groups; when there are any, a member passes with one of them or any
/// role positioned at or above the lowest of them (higher roles inherit lower
/// roles' rights). With none, the command's `default_permissions` apply. The
/// guild owner and Administrators always pass.
///
/// [`RolePermission`]: crate::store::RolePermission
pub fn member_may_run(
    command: &str,
    member_roles: &[u64],
    member_permissions: u64,
    is_owner: bool,
    allowed_roles: &[u64],
    guild_roles: &[Role],
    default_permissions: Option<u64>,
) -> Result<(), Refusal> {
    if is_owner || member_permissions & ADMINISTRATOR != 0 {
        return Ok(());
    }
    let position = |id: &u64| guild_roles.iter().find(|r| r.id == *id).map(|r| r.position);
    if !allowed_roles.is_empty() {
        let lowest_allowed = allowed_roles.iter().filter_map(position).min();
        let highest_held = member_roles.iter().filter_map(position).max();
        let holds_one = member_roles.iter().any(|r| allowed_roles.contains(r));
        let ranks_above = matches!((highest_held, lowest_allowed), (Some(h), Some(l)) if h >= l);
        if holds_one || ranks_above {
            return Ok(());
        }
        let mut names: Vec<&Role> = guild_roles
            .iter()
            .filter(|r| allowed_roles.contains(&r.id))
            .collect();
        names.sort_by_key(|r| r.position);
        let lowest = names
            .first()
            .map_or("an allowed".to_string(), |r| format!("the **{}**", r.name));
        return Err(Refusal::NotAllowed {
            command: command.to_string(),
            needs: format!("{lowest} role or a higher one"),
        });
    }
    match default_permissions {
        Some(bits) if member_permissions & bits != bits => Err(Refusal::NotAllowed {
            command: command.to_string(),
            needs: format!(
                "the {} permission",
                permissions::names(bits & !member_permissions)
                    .iter()
                    .map(|p| format!("**{p}**"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        _ => Ok(()),
    }
}

/// The Discord permissions the bot needs in a channel to serve a feature's
/// required capabilities there, plus `reply` (what answering needs).
pub fn bot_needs(requests: &[CapabilityRequest], reply: u64) -> u64 {
    requests
        .iter()
        .filter(|r| r.required)
        .fold(reply, |bits, r| bits | capability_permissions(r.capability))
}

fn capability_permissions(c: Capability) -> u64 {
    use permissions::*;
    match c {
        Capability::Messages => VIEW_CHANNEL | SEND_MESSAGES,
        Capability::Roles => MANAGE_ROLES,
        Capability::Channels => MANAGE_CHANNELS,
        Capability::Moderation => KICK_MEMBERS | BAN_MEMBERS | MODERATE_MEMBERS | MANAGE_MESSAGES,
        _ => 0,
    }
}

/// What the bot lacks of `needed`, or nothing. Administrator implies everything.
pub fn bot_missing(command: &str, needed: u64, held: u64) -> Result<(), Refusal> {
    if held & ADMINISTRATOR != 0 || held & needed == needed {
        return Ok(());
    }
    Err(Refusal::BotMissing {
        command: command.to_string(),
        permissions: permissions::names(needed & !held),
    })
}

/// When each member last ran each command, per guild.
///
/// With Redis ([`SharedLimits::with_redis`]) every process shares one record,
/// so a member cannot run a command once per process; see
/// [`crate::shared_limits`] for keys and what happens while Redis fails (each
/// process falls back to its own record below, which forgives at most one run
/// per process when Redis goes away). Without Redis the record is kept in
/// memory as the seed design says: a restart forgives running cooldowns.
///
/// The in-process record is a bounded cache with a lock per key: a command
/// checks and records its own entry without scanning or locking anyone else's.
/// Entries live for the longest possible cooldown; past [`TRACKED_RUNS`] the
/// least recently used are dropped, which can only forgive a cooldown early,
/// never hold one longer.
pub struct Cooldowns {
    last_run: moka::sync::Cache<(u64, u64, String), Instant>,
    shared: SharedLimits,
}

/// Entries older than the longest possible cooldown are forgotten.
const LONGEST_COOLDOWN: Duration = Duration::from_secs(86_400);
/// The most (guild, member, command) runs remembered at once in one process.
pub const TRACKED_RUNS: u64 = 250_000;

impl Default for Cooldowns {
    fn default() -> Self {
        Cooldowns::new(SharedLimits::local())
    }
}

impl Cooldowns {
    /// Shared through `shared` when it uses Redis, else kept in this process.
    pub fn new(shared: SharedLimits) -> Self {
        Cooldowns {
            last_run: moka::sync::Cache::builder()
                .max_capacity(TRACKED_RUNS)
                .time_to_live(LONGEST_COOLDOWN)
                .build(),
            shared,
        }
    }

    /// Starts `period` for (guild, user, command) now unless one is running,
    /// in which case the refusal says how long is left (rounded up). Every run
    /// is recorded, even without a cooldown, so one configured later applies
    /// at once. Decided by Redis when shared (by its clock), else (or while
    /// Redis fails) by [`Cooldowns::start`].
    pub async fn start_now(
        &self,
        guild_id: u64,
        user_id: u64,
        command: &str,
        period: Duration,
    ) -> Result<(), Refusal> {
        match self
            .shared
            .cooldown(guild_id, user_id, command, period, LONGEST_COOLDOWN)
            .await
        {
            Verdict::Pass => Ok(()),
            Verdict::Wait(left) => Err(cooldown_left(left)),
            Verdict::Local => self.start(guild_id, user_id, command, period, Instant::now()),
        }
    }

    /// [`Cooldowns::start_now`] in this process only, as of `now`.
    pub fn start(
        &self,
        guild_id: u64,
        user_id: u64,
        command: &str,
        period: Duration,
        now: Instant,
    ) -> Result<(), Refusal> {
        use moka::ops::compute::Op;
        let mut refused = None;
        self.last_run
            .entry((guild_id, user_id, command.to_string()))
            .and_compute_with(|last| {
                let since = last.map(|at| now.saturating_duration_since(at.into_value()));
                match since {
                    Some(since) if since < period => {
                        refused = Some(cooldown_left(period - since));
                        Op::Nop
                    }
                    _ => Op::Put(now),
                }
            });
        refused.map_or(Ok(()), Err)
    }
}

/// The refusal for a cooldown with `left` to run, in whole seconds rounded up.
fn cooldown_left(left: Duration) -> Refusal {
    Refusal::Cooldown {
        seconds_left: left.as_secs() + u64::from(left.subsec_nanos() > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discord::permissions::{MANAGE_GUILD, MANAGE_ROLES, SEND_MESSAGES, VIEW_CHANNEL};

    fn role(id: u64, name: &str, position: u32) -> Role {
        Role {
            id,
            name: name.into(),
            position,
            permissions: 0,
        }
    }

    fn roles() -> Vec<Role> {
        vec![
            role(1, "@everyone", 0),
            role(2, "Member", 1),
            role(3, "Mod", 5),
            role(4, "Admin", 9),
        ]
    }

    #[test]
    fn listed_role_or_higher_passes_lower_is_refused() {
        let allowed = [3];
        assert!(member_may_run("ban", &[3], 0, false, &allowed, &roles(), None).is_ok());
        assert!(member_may_run("ban", &[4], 0, false, &allowed, &roles(), None).is_ok());
        let refused = member_may_run("ban", &[2], 0, false, &allowed, &roles(), None).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "You don't have permission to use `ban`: it needs the **Mod** role or a higher one."
        );
    }

    #[test]
    fn default_permissions_apply_without_role_rules() {
        assert!(
            member_may_run(
                "cfg",
                &[],
                MANAGE_GUILD,
                false,
                &[],
                &roles(),
                Some(MANAGE_GUILD)
            )
            .is_ok()
        );
        let refused = member_may_run(
            "cfg",
            &[2],
            SEND_MESSAGES,
            false,
            &[],
            &roles(),
            Some(MANAGE_GUILD),
        )
        .unwrap_err();
        assert!(
            refused.to_string().contains("**Manage Server**"),
            "{refused}"
        );
        assert!(member_may_run("rank", &[], 0, false, &[], &roles(), None).is_ok());
    }

    #[test]
    fn owner_and_administrators_always_pass() {
        assert!(member_may_run("ban", &[], 0, true, &[3], &roles(), Some(MANAGE_GUILD)).is_ok());
        assert!(member_may_run("ban", &[], ADMINISTRATOR, false, &[3], &roles(), None).is_ok());
    }

    #[test]
    fn bot_missing_names_each_permission() {
        let refusal = bot_missing(
            "rank",
            VIEW_CHANNEL | SEND_MESSAGES | MANAGE_ROLES,
            VIEW_CHANNEL,
        )
        .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "I can't run `rank` here: I'm missing the **Manage Roles**, **Send Messages** permissions in this channel. A server admin can grant them to my role in Server Settings → Roles, or in this channel's permission settings."
        );
        assert!(bot_missing("rank", SEND_MESSAGES, ADMINISTRATOR).is_ok());
    }

    #[test]
    fn cooldown_counts_down_per_member_and_command() {
        let cooldowns = Cooldowns::default();
        let t0 = Instant::now();
        let period = Duration::from_secs(10);
        assert!(cooldowns.start(1, 42, "rank", period, t0).is_ok());
        assert_eq!(
            cooldowns.start(1, 42, "rank", period, t0 + Duration::from_millis(2_500)),
            Err(Refusal::Cooldown { seconds_left: 8 })
        );
        assert!(
            cooldowns.start(1, 43, "rank", period, t0).is_ok(),
            "another member"
        );
        assert!(
            cooldowns.start(1, 42, "top", period, t0).is_ok(),
            "another command"
        );
        assert!(
            cooldowns.start(1, 42, "rank", period, t0 + period).is_ok(),
            "expired"
        );
        assert_eq!(
            Refusal::Cooldown { seconds_left: 1 }.to_string(),
            "Please wait 1 second before using this command again."
        );
    }

    #[test]
    fn of_simultaneous_runs_only_one_starts_the_cooldown() {
        let cooldowns = std::sync::Arc::new(Cooldowns::default());
        let t0 = Instant::now();
        let started: usize = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..16)
                .map(|_| {
                    let cooldowns = cooldowns.clone();
                    scope.spawn(move || {
                        cooldowns
                            .start(1, 42, "rank", Duration::from_secs(10), t0)
                            .is_ok()
                    })
                })
                .collect();
            runs.into_iter()
                .map(|run| usize::from(run.join().unwrap()))
                .sum()
        });
        assert_eq!(started, 1);
    }
}
