//! `roles`: add and remove roles, never a role at or above the bot's own top
//! role, never one carrying Administrator or another dangerous permission the
//! admin did not allow (Manage Server would make its holder a dashboard
//! manager), and never one at or above the ceiling the admin set.

use super::{Cap, DiscordCtx, Effect};
use crate::discord::Discord;
use crate::discord::permissions::ADMINISTRATOR;
use crate::grants::Grant;
use crate::wit::townes::feature::roles::Host;
use crate::wit::{Capability, Error};

/// The grant's role ceiling, checked against the guild's live role positions.
async fn check_role(
    discord: &dyn Discord,
    guild_id: u64,
    grant: &Grant,
    role_id: u64,
) -> Result<(), Error> {
    let roles = discord.roles(guild_id).await?;
    let position_of = |id: u64| roles.iter().find(|r| r.id == id).map(|r| r.position);
    let role = roles
        .iter()
        .find(|r| r.id == role_id)
        .ok_or_else(|| Error::NotFound(format!("role {role_id}")))?;
    let bot_top = discord.bot_top_position(guild_id).await?;
    let ceiling = match grant.role_ceiling {
        Some(ceiling_id) => position_of(ceiling_id).unwrap_or(0).min(bot_top),
        None => bot_top,
    };
    // The @everyone role shares the guild's id and cannot be assigned.
    if role.permissions & ADMINISTRATOR != 0 || role.position >= ceiling || role_id == guild_id {
        return Err(Error::Denied(Capability::Roles));
    }
    grant.check_permissions(Capability::Roles, role.permissions)
}

impl Cap<'_, DiscordCtx> {
    async fn change_role(
        &mut self,
        call: &'static str,
        user_id: u64,
        role_id: u64,
        reason: Option<String>,
        add: bool,
    ) -> Result<(), Error> {
        self.calls.begin(Capability::Roles, call)?;
        let result = match check_role(
            self.ctx.discord.as_ref(),
            self.ctx.guild_id,
            &self.calls.grant,
            role_id,
        )
        .await
        {
            Err(e) => Err(e),
            Ok(()) if add => self
                .ctx
                .discord
                .add_role(self.ctx.guild_id, user_id, role_id, reason.as_deref())
                .await
                .map_err(Error::from),
            Ok(()) => self
                .ctx
                .discord
                .remove_role(self.ctx.guild_id, user_id, role_id, reason.as_deref())
                .await
                .map_err(Error::from),
        };
        self.calls.finish(call, result, |_| {
            Some(if add {
                Effect::RoleAdded {
                    user_id,
                    role_id,
                    reason,
                }
            } else {
                Effect::RoleRemoved {
                    user_id,
                    role_id,
                    reason,
                }
            })
        })
    }
}

impl Host for Cap<'_, DiscordCtx> {
    async fn add(
        &mut self,
        user_id: u64,
        role_id: u64,
        reason: Option<String>,
    ) -> Result<(), Error> {
        self.change_role("roles.add", user_id, role_id, reason, true)
            .await
    }

    async fn remove(
        &mut self,
        user_id: u64,
        role_id: u64,
        reason: Option<String>,
    ) -> Result<(), Error> {
        self.change_role("roles.remove", user_id, role_id, reason, false)
            .await
    }
}
