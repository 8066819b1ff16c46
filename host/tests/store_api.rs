//! The store's dashboard-API storage (sessions, API keys, OAuth states, incidents, audit
//! paging and tailing) against both backends (see `common::each_backend`).

mod common;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use townes::store::{
    ApiKey, Backend, GUILD_TRANSFERRED, Guild, Incident, NewAuditEntry, NewIncident, NewSession,
    OwnerChange, Session, StoreError,
};

use common::each_backend;

/// Now, as the store keeps it (microseconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Lets the clock move on, so rows written next get a later `created_at` than the last
/// (the lists under test are ordered by it).
async fn tick() {
    tokio::time::sleep(StdDuration::from_millis(2)).await;
}

fn invalid_argument(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::InvalidArgument(message)) => message,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn session<'a>(
    token_hash: &'a str,
    tenant_id: &'a str,
    expires_at: DateTime<Utc>,
) -> NewSession<'a> {
    NewSession {
        token_hash,
        tenant_id,
        discord_user_id: u64::MAX - 5,
        user_name: "Ada",
        expires_at,
    }
}

fn incident(tenant_id: &str, severity: &str, title: &str) -> NewIncident {
    NewIncident {
        tenant_id: tenant_id.to_string(),
        guild_id: Some(u64::MAX - 1),
        severity: severity.to_string(),
        title: title.to_string(),
        description: "It broke.".to_string(),
        created_by: "user:42".to_string(),
    }
}

#[tokio::test]
async fn migration_0005_is_applied() {
    for (label, store, _guard) in each_backend().await {
        let applied = store.applied_migrations().await.unwrap();
        // Not necessarily the last: later migrations follow it.
        assert!(
            applied.contains(&(5, "api".to_string())),
            "{label}: {applied:?}"
        );
    }
}

#[tokio::test]
async fn ping_answers() {
    for (label, store, _guard) in each_backend().await {
        store
            .ping()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        store.close().await;
        assert!(store.ping().await.is_err(), "{label}: ping after close");
    }
}

#[tokio::test]
async fn sessions_live_until_expired_or_revoked() {
    for (label, store, _guard) in each_backend().await {
        let tenant = store.create_tenant(1, Some("One")).await.unwrap();
        let before = now();
        let expires_at = Utc::now() + Duration::hours(1);
        store
            .create_session(&session("hash-live", &tenant.id, expires_at))
            .await
            .unwrap();
        let after = now();

        let live = store.live_session("hash-live").await.unwrap().unwrap();
        assert!(
            live.created_at >= before && live.created_at <= after,
            "{label}"
        );
        assert_eq!(
            live,
            Session {
                tenant_id: tenant.id.clone(),
                discord_user_id: u64::MAX - 5,
                user_name: "Ada".to_string(),
                created_at: live.created_at,
                expires_at: expires_at.trunc_subsecs(6),
            },
            "{label}"
        );
        assert_eq!(
            store.live_session("no-such-hash").await.unwrap(),
            None,
            "{label}"
        );

        // Expired: stored, but never live, and cannot be revoked.
        store
            .create_session(&session(
                "hash-expired",
                &tenant.id,
                now() - Duration::seconds(1),
            ))
            .await
            .unwrap();
        assert_eq!(
            store.live_session("hash-expired").await.unwrap(),
            None,
            "{label}"
        );
        assert!(
            !store.revoke_session("hash-expired").await.unwrap(),
            "{label}"
        );

        // Revoked: no longer live; a second revoke finds nothing to revoke.
        assert!(store.revoke_session("hash-live").await.unwrap(), "{label}");
        assert_eq!(
            store.live_session("hash-live").await.unwrap(),
            None,
            "{label}"
        );
        assert!(!store.revoke_session("hash-live").await.unwrap(), "{label}");
        assert!(
            !store.revoke_session("no-such-hash").await.unwrap(),
            "{label}"
        );

        // The same token hash twice is a database error, not a silent overwrite.
        let again = store
            .create_session(&session("hash-live", &tenant.id, expires_at))
            .await;
        assert!(
            matches!(again, Err(StoreError::Database(_))),
            "{label}: {again:?}"
        );

        let message = invalid_argument(
            store
                .create_session(&session("hash-x", "no-such-tenant", expires_at))
                .await,
        );
        assert!(message.contains("tenant"), "{label}: {message}");
    }
}

#[tokio::test]
async fn api_keys_create_list_verify_revoke_touch() {
    for (label, store, _guard) in each_backend().await {
        let tenant = store.create_tenant(1, None).await.unwrap();
        let other = store.create_tenant(2, None).await.unwrap();

        let before = now();
        let ci = store
            .create_api_key(&tenant.id, "ci", "secret-ci")
            .await
            .unwrap();
        let after = now();
        assert_eq!(ci.id.len(), 32, "{label}");
        assert!(ci.id.chars().all(|c| c.is_ascii_hexdigit()), "{label}");
        assert_eq!(
            (
                ci.tenant_id.as_str(),
                ci.name.as_str(),
                ci.last_used_at,
                ci.revoked_at
            ),
            (tenant.id.as_str(), "ci", None, None),
            "{label}"
        );
        assert!(ci.created_at >= before && ci.created_at <= after, "{label}");
        tick().await;
        let deploy = store
            .create_api_key(&tenant.id, "deploy", "secret-deploy")
            .await
            .unwrap();
        tick().await;
        let theirs = store
            .create_api_key(&other.id, "theirs", "secret-theirs")
            .await
            .unwrap();

        // Newest first, only the tenant's own.
        assert_eq!(
            store.api_keys(&tenant.id).await.unwrap(),
            vec![deploy.clone(), ci.clone()],
            "{label}"
        );
        assert_eq!(
            store.api_keys(&other.id).await.unwrap(),
            vec![theirs.clone()],
            "{label}"
        );
        assert_eq!(
            store.api_keys("no-such-tenant").await.unwrap(),
            vec![],
            "{label}"
        );

        // Live lookup returns the key and its secret hash.
        assert_eq!(
            store.live_api_key(&ci.id).await.unwrap(),
            Some((ci.clone(), "secret-ci".to_string())),
            "{label}"
        );
        assert_eq!(
            store.live_api_key("no-such-key").await.unwrap(),
            None,
            "{label}"
        );

        // Touch sets last_used_at to now.
        let before = now();
        store.touch_api_key(&ci.id).await.unwrap();
        let after = now();
        let (touched, _) = store.live_api_key(&ci.id).await.unwrap().unwrap();
        let used = touched.last_used_at.expect("last_used_at set");
        assert!(used >= before && used <= after, "{label}");
        store.touch_api_key("no-such-key").await.unwrap();

        // Another tenant cannot revoke it.
        assert!(
            !store.revoke_api_key(&other.id, &ci.id).await.unwrap(),
            "{label}"
        );
        assert!(
            store.live_api_key(&ci.id).await.unwrap().is_some(),
            "{label}"
        );

        // Revoked: not live, still listed (with revoked_at), not revocable again.
        let before = now();
        assert!(
            store.revoke_api_key(&tenant.id, &ci.id).await.unwrap(),
            "{label}"
        );
        let after = now();
        assert_eq!(store.live_api_key(&ci.id).await.unwrap(), None, "{label}");
        assert!(
            !store.revoke_api_key(&tenant.id, &ci.id).await.unwrap(),
            "{label}"
        );
        assert!(
            !store
                .revoke_api_key(&tenant.id, "no-such-key")
                .await
                .unwrap(),
            "{label}"
        );
        let listed = store.api_keys(&tenant.id).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, [deploy.id.as_str(), ci.id.as_str()], "{label}");
        let revoked: &ApiKey = &listed[1];
        let at = revoked.revoked_at.expect("revoked_at set");
        assert!(at >= before && at <= after, "{label}");
        assert_eq!(revoked.last_used_at, Some(used), "{label}");
        assert_eq!(listed[0].revoked_at, None, "{label}");
        assert!(
            store.live_api_key(&deploy.id).await.unwrap().is_some(),
            "{label}"
        );

        // Refused: unknown tenant, bad names.
        let message = invalid_argument(store.create_api_key("no-such-tenant", "x", "h").await);
        assert!(message.contains("no-such-tenant"), "{label}: {message}");
        let message = invalid_argument(store.create_api_key(&tenant.id, "", "h").await);
        assert!(message.contains("name"), "{label}: {message}");
        let message = invalid_argument(
            store
                .create_api_key(&tenant.id, &"n".repeat(101), "h")
                .await,
        );
        assert!(message.contains("name"), "{label}: {message}");
        assert_eq!(
            store.api_keys(&tenant.id).await.unwrap().len(),
            2,
            "{label}"
        );
    }
}

#[tokio::test]
async fn oauth_states_are_single_use_and_expire() {
    for (label, store, _guard) in each_backend().await {
        let later = Utc::now() + Duration::minutes(10);
        store.put_oauth_state("state-a", later).await.unwrap();
        store.put_oauth_state("state-b", later).await.unwrap();
        store
            .put_oauth_state("state-old", Utc::now() - Duration::seconds(1))
            .await
            .unwrap();

        assert!(store.take_oauth_state("state-a").await.unwrap(), "{label}");
        assert!(
            !store.take_oauth_state("state-a").await.unwrap(),
            "{label}: reused"
        );
        assert!(
            !store.take_oauth_state("state-old").await.unwrap(),
            "{label}: expired"
        );
        assert!(
            !store.take_oauth_state("never-issued").await.unwrap(),
            "{label}"
        );
        // Taking one state leaves the other valid ones alone.
        assert!(store.take_oauth_state("state-b").await.unwrap(), "{label}");

        // Expired states were deleted: the same hash can be issued again.
        store.put_oauth_state("state-old", later).await.unwrap();
        assert!(
            store.take_oauth_state("state-old").await.unwrap(),
            "{label}"
        );
    }
}

#[tokio::test]
async fn incidents_validate_and_list_newest_first() {
    for (label, store, _guard) in each_backend().await {
        let tenant = store.create_tenant(1, None).await.unwrap();
        let other = store.create_tenant(2, None).await.unwrap();

        let before = now();
        let first = store
            .create_incident(&incident(&tenant.id, "low", "First"))
            .await
            .unwrap();
        let after = now();
        assert_eq!(first.id.len(), 32, "{label}");
        assert!(
            first.created_at >= before && first.created_at <= after,
            "{label}"
        );
        assert_eq!(
            first,
            Incident {
                id: first.id.clone(),
                tenant_id: tenant.id.clone(),
                guild_id: Some(u64::MAX - 1),
                severity: "low".to_string(),
                title: "First".to_string(),
                description: "It broke.".to_string(),
                status: "open".to_string(),
                created_by: "user:42".to_string(),
                created_at: first.created_at,
            },
            "{label}"
        );
        tick().await;
        // Limits count characters, not bytes; every severity is accepted.
        let mut second = incident(&tenant.id, "medium", &"é".repeat(200));
        second.guild_id = None;
        second.description = "ü".repeat(10_000);
        let second = store.create_incident(&second).await.unwrap();
        tick().await;
        let third = store
            .create_incident(&incident(&tenant.id, "high", "Third"))
            .await
            .unwrap();
        tick().await;
        let fourth = store
            .create_incident(&incident(&tenant.id, "critical", "Fourth"))
            .await
            .unwrap();
        let theirs = store
            .create_incident(&incident(&other.id, "low", "Theirs"))
            .await
            .unwrap();

        assert_eq!(
            store.incidents(&tenant.id, 10).await.unwrap(),
            vec![fourth.clone(), third.clone(), second.clone(), first.clone()],
            "{label}"
        );
        assert_eq!(
            store.incidents(&tenant.id, 2).await.unwrap(),
            vec![fourth, third],
            "{label}"
        );
        assert_eq!(
            store.incidents(&other.id, 10).await.unwrap(),
            vec![theirs],
            "{label}"
        );
        assert_eq!(
            store.incidents("no-such-tenant", 10).await.unwrap(),
            vec![],
            "{label}"
        );

        // Refusals name the field.
        let message = invalid_argument(
            store
                .create_incident(&incident(&tenant.id, "urgent", "t"))
                .await,
        );
        assert!(
            message.contains("severity") && message.contains("low, medium, high, critical"),
            "{label}: {message}"
        );
        let message = invalid_argument(
            store
                .create_incident(&incident(&tenant.id, "low", ""))
                .await,
        );
        assert!(message.contains("title"), "{label}: {message}");
        let message = invalid_argument(
            store
                .create_incident(&incident(&tenant.id, "low", &"t".repeat(201)))
                .await,
        );
        assert!(message.contains("title"), "{label}: {message}");
        let mut long = incident(&tenant.id, "low", "t");
        long.description = "d".repeat(10_001);
        let message = invalid_argument(store.create_incident(&long).await);
        assert!(message.contains("description"), "{label}: {message}");
        let message = invalid_argument(
            store
                .create_incident(&incident("no-such-tenant", "low", "t"))
                .await,
        );
        assert!(message.contains("tenant"), "{label}: {message}");
        assert_eq!(
            store.incidents(&tenant.id, 10).await.unwrap().len(),
            4,
            "{label}"
        );
    }
}

#[tokio::test]
async fn audit_entry_page_since_head() {
    for (label, store, _guard) in each_backend().await {
        assert_eq!(store.audit_head().await.unwrap(), 0, "{label}");
        assert_eq!(store.audit_since(0, 10).await.unwrap(), vec![], "{label}");
        assert_eq!(
            store.audit_page(1, None, 10).await.unwrap(),
            vec![],
            "{label}"
        );

        for (guild_id, action) in [
            (Some(1), "a"),
            (Some(2), "b"),
            (Some(1), "c"),
            (None, "d"),
            (Some(1), "e"),
            (Some(1), "f"),
            (Some(1), "g"),
        ] {
            store
                .audit(&NewAuditEntry {
                    guild_id,
                    actor: "user:42".into(),
                    action: action.into(),
                    feature_id: None,
                    details: json!({ "action": action }),
                })
                .await
                .unwrap();
        }
        let all = store.audit_since(0, 100).await.unwrap();
        let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["a", "b", "c", "d", "e", "f", "g"], "{label}");
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "{label}");
        let head = store.audit_head().await.unwrap();
        assert_eq!(head, all.last().unwrap().id, "{label}");

        // One entry, only through its own guild.
        let c = all[2].clone();
        assert_eq!(
            store.audit_entry(1, c.id).await.unwrap(),
            Some(c.clone()),
            "{label}"
        );
        assert_eq!(store.audit_entry(2, c.id).await.unwrap(), None, "{label}");
        assert_eq!(
            store.audit_entry(1, all[3].id).await.unwrap(),
            None,
            "{label}: platform"
        );
        assert_eq!(
            store.audit_entry(1, head + 1).await.unwrap(),
            None,
            "{label}"
        );

        // Keyset pages of guild 1, newest first, until an empty page.
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = store.audit_page(1, before, 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.iter().all(|e| e.guild_id == Some(1)), "{label}");
            before = Some(page.last().unwrap().id);
            pages.push(page.into_iter().map(|e| e.action).collect::<Vec<_>>());
        }
        assert_eq!(
            pages,
            [vec!["g", "f"], vec!["e", "c"], vec!["a"]],
            "{label}"
        );
        let after_c: Vec<String> = store
            .audit_page(1, Some(c.id), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(after_c, ["a"], "{label}");
        assert_eq!(
            store.audit_page(3, None, 10).await.unwrap(),
            vec![],
            "{label}"
        );

        // Tailing: what came after a cursor, oldest first, at most limit.
        let tail: Vec<String> = store
            .audit_since(c.id, 2)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(tail, ["d", "e"], "{label}");
        assert_eq!(
            store.audit_since(head, 10).await.unwrap(),
            vec![],
            "{label}"
        );
        store
            .audit(&NewAuditEntry {
                guild_id: Some(2),
                actor: "system".into(),
                action: "h".into(),
                feature_id: Some("xp".into()),
                details: json!({}),
            })
            .await
            .unwrap();
        let new = store.audit_since(head, 10).await.unwrap();
        assert_eq!(new.len(), 1, "{label}");
        assert_eq!(new[0].action, "h", "{label}");
        assert_eq!(store.audit_head().await.unwrap(), new[0].id, "{label}");
    }
}

/// Deleting a tenant deletes its sessions, keys and incidents (`ON DELETE CASCADE`); the
/// store has no tenant deletion, so this goes through SQL.
#[tokio::test]
async fn api_rows_go_with_their_tenant() {
    for (label, store, guard) in each_backend().await {
        let gone = store.create_tenant(1, None).await.unwrap();
        let kept = store.create_tenant(2, None).await.unwrap();
        let later = Utc::now() + Duration::hours(1);
        for tenant in [&gone, &kept] {
            let hash = format!("session-{}", tenant.id);
            store
                .create_session(&session(&hash, &tenant.id, later))
                .await
                .unwrap();
            store.create_api_key(&tenant.id, "k", "h").await.unwrap();
            store
                .create_incident(&incident(&tenant.id, "low", "t"))
                .await
                .unwrap();
        }

        let delete = "DELETE FROM tenants WHERE id = $1";
        match store.backend() {
            Backend::Sqlite => {
                // sqlx turns foreign keys on for every SQLite connection by default.
                let pool = SqlitePool::connect(guard.url()).await.unwrap();
                sqlx::query(delete)
                    .bind(&gone.id)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = PgPool::connect(guard.url()).await.unwrap();
                sqlx::query(delete)
                    .bind(&gone.id)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
        }

        let gone_hash = format!("session-{}", gone.id);
        let kept_hash = format!("session-{}", kept.id);
        assert_eq!(
            store.live_session(&gone_hash).await.unwrap(),
            None,
            "{label}"
        );
        assert!(
            store.live_session(&kept_hash).await.unwrap().is_some(),
            "{label}"
        );
        assert_eq!(store.api_keys(&gone.id).await.unwrap(), vec![], "{label}");
        assert_eq!(store.api_keys(&kept.id).await.unwrap().len(), 1, "{label}");
        assert_eq!(
            store.incidents(&gone.id, 10).await.unwrap(),
            vec![],
            "{label}"
        );
        assert_eq!(
            store.incidents(&kept.id, 10).await.unwrap().len(),
            1,
            "{label}"
        );
    }
}

/// An ownership change moves a claimed guild to the new owner's tenant (made for
/// them if needed) with its audit entry; an unclaimed guild only changes owner;
/// an unknown guild or the same owner changes nothing.
#[tokio::test]
async fn an_owner_change_moves_a_claimed_guild_to_the_new_owners_tenant() {
    for (label, store, _guard) in each_backend().await {
        let old = store.create_tenant(10, Some("old")).await.unwrap();
        store
            .upsert_guild(&Guild::new(1, "claimed", 10))
            .await
            .unwrap();
        store
            .upsert_guild(&Guild::new(2, "unclaimed", 10))
            .await
            .unwrap();
        store.set_guild_tenant(1, Some(&old.id)).await.unwrap();

        assert_eq!(
            store.change_guild_owner(1, 10).await.unwrap(),
            None,
            "{label}"
        );
        assert_eq!(
            store.change_guild_owner(99, 20).await.unwrap(),
            None,
            "{label}"
        );

        let change = store.change_guild_owner(1, 20).await.unwrap().unwrap();
        let new = store.tenant_by_owner(20).await.unwrap().expect("created");
        assert_eq!(
            change,
            OwnerChange {
                from_owner: 10,
                from_tenant: Some(old.id.clone()),
                to_tenant: Some(new.id.clone()),
            },
            "{label}"
        );
        let guild = store.guild(1).await.unwrap().unwrap();
        assert_eq!(
            (guild.owner_id, guild.tenant_id),
            (20, Some(new.id.clone())),
            "{label}"
        );
        let entry = store.audit_entries(1, 1).await.unwrap().remove(0);
        assert_eq!(
            (entry.actor.as_str(), entry.action.as_str()),
            ("discord", GUILD_TRANSFERRED),
            "{label}"
        );
        assert_eq!(
            entry.details,
            json!({ "from_owner": "10", "to_owner": "20", "tenant_moved": true }),
            "{label}"
        );
        // Their login later finds the same tenant.
        assert_eq!(
            store.create_tenant(20, None).await.unwrap().id,
            new.id,
            "{label}"
        );

        let unclaimed = store.change_guild_owner(2, 30).await.unwrap().unwrap();
        assert_eq!(unclaimed.to_tenant, None, "{label}");
        let guild = store.guild(2).await.unwrap().unwrap();
        assert_eq!((guild.owner_id, guild.tenant_id), (30, None), "{label}");
        assert!(
            store.tenant_by_owner(30).await.unwrap().is_none(),
            "{label}"
        );
    }
}
