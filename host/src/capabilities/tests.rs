//! Capabilities called directly, without wasm: each host trait on its own
//! context, against a real SQLite file and the local Discord.

use super::rates::Rates;
use super::*;
use crate::discord::{LocalDiscord, LocalGuild, Role, permissions};
use crate::grants::CapabilitySet;
use crate::grants::Quota;
use crate::store::{Guild, Scope, Store};
use crate::wit::MessageBody;
use crate::wit::townes::feature as wit_if;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const GUILD: u64 = 1000;
const GENERAL: u64 = GUILD + 1;
const MEMBER: u64 = 42;

struct Fixture {
    store: Store,
    discord: Arc<LocalDiscord>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("caps.db").display());
    let store = Store::connect(&url).await.unwrap();
    store
        .upsert_guild(&Guild::new(GUILD, "Caps", 1))
        .await
        .unwrap();
    let discord = Arc::new(LocalDiscord::new());
    let mut guild = LocalGuild::new(GUILD, "Caps");
    guild.add_member(MEMBER, "ada", vec![]);
    discord.add_guild(guild);
    Fixture {
        store,
        discord,
        _dir: dir,
    }
}

fn grant(capabilities: &[Capability]) -> Grant {
    Grant {
        capabilities: capabilities.iter().copied().collect::<CapabilitySet>(),
        channels: None,
        role_ceiling: None,
        elevated_permissions: 0,
        mention_roles: Vec::new(),
        storage: Quota {
            max_bytes: 1 << 20,
            max_rows: 1000,
        },
        ai: false,
        http_hosts: Vec::new(),
    }
}

fn scope() -> Scope {
    Scope::new(GUILD, "caps")
}

impl Fixture {
    fn storage(&self) -> storage::StorageCtx {
        storage::StorageCtx {
            store: self.store.clone(),
            scope: scope(),
        }
    }

    fn discord(&self) -> DiscordCtx {
        DiscordCtx {
            guild_id: GUILD,
            discord: self.discord.clone(),
        }
    }
}

#[tokio::test]
async fn host_call_fuel_runs_out_and_the_record_stays_bounded() {
    let f = fixture().await;
    let mut calls = Calls::new(grant(&[Capability::Storage]), 3);
    let mut ctx = f.storage();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    for i in 0..3 {
        wit_if::storage::Host::set(&mut cap, format!("k{i}"), "v".into())
            .await
            .unwrap();
    }
    for _ in 0..1000 {
        let err = wit_if::storage::Host::get(&mut cap, "k0".into())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");
    }
    assert_eq!(
        calls.effects().len(),
        3 + MAX_EXTRA_EFFECTS,
        "refusals past the fuel are counted, not recorded"
    );
    assert_eq!(calls.unrecorded_refusals, 1000 - MAX_EXTRA_EFFECTS as u32);
}

#[tokio::test]
async fn a_capability_outside_the_grant_is_denied_and_recorded() {
    let f = fixture().await;
    let mut calls = Calls::new(grant(&[]), 10);
    let mut ctx = f.storage();
    let err =
        wit_if::storage::Host::set(&mut Cap::new(&mut calls, &mut ctx), "k".into(), "v".into())
            .await
            .unwrap_err();
    assert_eq!(err, Error::Denied(Capability::Storage));
    assert_eq!(
        calls.effects(),
        [Effect::Refused {
            call: "storage.set",
            error: "denied(storage)".into()
        }]
    );
    assert_eq!(f.store.kv_get(&scope(), "k").await.unwrap(), None);
}

#[tokio::test]
async fn a_read_only_guild_reads_but_every_write_is_refused() {
    let f = fixture().await;
    let room = Quota {
        max_bytes: 1000,
        max_rows: 10,
    };
    f.store.kv_set(&scope(), "k", "before", room).await.unwrap();
    let mut calls = Calls::new(grant(&[Capability::Storage, Capability::Messages]), 10);
    calls.set_read_only();
    let mut ctx = f.storage();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    assert_eq!(
        wit_if::storage::Host::get(&mut cap, "k".into())
            .await
            .unwrap(),
        Some("before".into())
    );
    for write in [
        wit_if::storage::Host::set(&mut cap, "k".into(), "after".into()).await,
        wit_if::storage::Host::delete(&mut cap, "k".into())
            .await
            .map(drop),
        wit_if::storage::Host::board_set(&mut cap, "xp".into(), 7, 1).await,
    ] {
        let err = write.unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(why) if why.starts_with("read-only")),
            "{err:?}"
        );
    }
    assert_eq!(
        f.store.kv_get(&scope(), "k").await.unwrap().as_deref(),
        Some("before")
    );
}

#[tokio::test]
async fn storage_counts_board_rows_as_the_shared_limits_do() {
    let f = fixture().await;
    let mut granted = grant(&[Capability::Storage]);
    // Room for exactly one row of board "xp".
    granted.storage = Quota {
        max_bytes: townes_limits::storage::board_row_bytes("xp"),
        max_rows: 10,
    };
    let mut calls = Calls::new(granted, 10);
    let mut ctx = f.storage();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    assert_eq!(
        wit_if::storage::Host::board_increment(&mut cap, "xp".into(), 1, 5)
            .await
            .unwrap(),
        5
    );
    let err = wit_if::storage::Host::board_increment(&mut cap, "xp".into(), 2, 5)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");
    // An existing row changes in place.
    assert_eq!(
        wit_if::storage::Host::board_increment(&mut cap, "xp".into(), 1, 5)
            .await
            .unwrap(),
        10
    );
    let long_key = "k".repeat(townes_limits::storage::MAX_KEY_BYTES + 1);
    let err = wit_if::storage::Host::set(&mut cap, long_key, "v".into())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidArgument("a key is 257 bytes; 1 to 256 allowed".into())
    );
}

#[tokio::test]
async fn set_if_records_a_write_only_when_it_wrote() {
    let f = fixture().await;
    let mut calls = Calls::new(grant(&[Capability::Storage]), 10);
    let mut ctx = f.storage();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let set_if = wit_if::storage::Host::set_if;
    assert!(
        set_if(&mut cap, "k".into(), None, "1".into())
            .await
            .unwrap()
    );
    assert!(
        !set_if(&mut cap, "k".into(), None, "2".into())
            .await
            .unwrap()
    );
    assert!(
        set_if(&mut cap, "k".into(), Some("1".into()), "2".into())
            .await
            .unwrap()
    );
    let writes = calls
        .effects()
        .iter()
        .filter(|e| matches!(e, Effect::StorageSet { .. }))
        .count();
    assert_eq!(writes, 2);
    assert_eq!(
        f.store.kv_get(&scope(), "k").await.unwrap().as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn an_empty_or_oversized_message_never_reaches_discord() {
    let f = fixture().await;
    let mut calls = Calls::new(grant(&[Capability::Messages]), 10);
    let mut ctx = f.discord();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let err = wit_if::messages::Host::send(
        &mut cap,
        GENERAL,
        MessageBody {
            content: None,
            embeds: Vec::new(),
            components: Vec::new(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("empty")),
        "{err:?}"
    );
    let embed: crate::wit::Embed = serde_json::from_value(serde_json::json!({
        "fields": [{ "name": "n", "value": "v".repeat(1025), "inline": false }]
    }))
    .unwrap();
    let body = MessageBody {
        content: Some("hi".into()),
        embeds: vec![embed],
        components: Vec::new(),
    };
    let err = wit_if::messages::Host::send(&mut cap, GENERAL, body)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidArgument(
            "an embed field value is 1025 characters; at most 1024 allowed".into()
        )
    );
    let sent = wit_if::messages::Host::send(&mut cap, GENERAL, MessageBody::text("hello"))
        .await
        .unwrap();
    assert!(sent > 0);
    assert_eq!(calls.effects().len(), 3);
}

#[tokio::test]
async fn the_channel_allow_list_holds_for_messages_and_purges() {
    let f = fixture().await;
    let mut granted = grant(&[Capability::Messages, Capability::Moderation]);
    granted.channels = Some(vec![GENERAL]);
    let mut calls = Calls::new(granted, 10);
    let mut ctx = f.discord();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let elsewhere = GENERAL + 100;
    assert_eq!(
        wit_if::messages::Host::send(&mut cap, elsewhere, MessageBody::text("x"))
            .await
            .unwrap_err(),
        Error::Denied(Capability::Messages)
    );
    assert_eq!(
        wit_if::moderation::Host::purge(&mut cap, elsewhere, 5)
            .await
            .unwrap_err(),
        Error::Denied(Capability::Moderation)
    );
}

#[tokio::test]
async fn reactions_page_in_id_order_within_the_allow_list_and_need_messages() {
    use wit_if::messages::Host as _;
    let discord = Arc::new(LocalDiscord::new());
    let mut guild = LocalGuild::new(GUILD, "Caps");
    guild
        .reactions
        .insert((77, "🔴".into()), [5, 3, 9, 1].into_iter().collect());
    discord.add_guild(guild);
    let mut ctx = DiscordCtx {
        guild_id: GUILD,
        discord,
    };

    let mut calls = Calls::new(grant(&[Capability::Storage]), 10);
    let mut cap = Cap::new(&mut calls, &mut ctx);
    assert_eq!(
        cap.reactions(GENERAL, 77, "🔴".into(), None, 10)
            .await
            .unwrap_err(),
        Error::Denied(Capability::Messages)
    );

    let mut granted = grant(&[Capability::Messages]);
    granted.channels = Some(vec![GENERAL]);
    let mut calls = Calls::new(granted, 10);
    let mut cap = Cap::new(&mut calls, &mut ctx);
    assert_eq!(
        cap.reactions(GENERAL, 77, "🔴".into(), None, 2).await,
        Ok(vec![1, 3])
    );
    assert_eq!(
        cap.reactions(GENERAL, 77, "🔴".into(), Some(3), 100).await,
        Ok(vec![5, 9])
    );
    assert_eq!(
        cap.reactions(GENERAL + 100, 77, "🔴".into(), None, 10)
            .await
            .unwrap_err(),
        Error::Denied(Capability::Messages)
    );
    for limit in [0, 101] {
        assert!(matches!(
            cap.reactions(GENERAL, 77, "🔴".into(), None, limit).await,
            Err(Error::InvalidArgument(why)) if why.contains("page with `after`")
        ));
    }
    assert!(matches!(
        cap.reactions(GENERAL, 77, "x".repeat(5000), None, 10).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn roles_refuse_dangerous_permissions_unless_the_admin_elevated_them() {
    let f = fixture().await;
    let manager_role = GUILD + 5;
    f.discord.with_guild(GUILD, |g| {
        g.roles.push(Role {
            id: manager_role,
            name: "Manager".into(),
            position: 5,
            permissions: permissions::MANAGE_GUILD,
        })
    });
    let mut calls = Calls::new(grant(&[Capability::Roles]), 10);
    let mut ctx = f.discord();
    let err = wit_if::roles::Host::add(
        &mut Cap::new(&mut calls, &mut ctx),
        MEMBER,
        manager_role,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err, Error::Denied(Capability::Roles));

    let mut elevated = grant(&[Capability::Roles]);
    elevated.elevated_permissions = permissions::MANAGE_GUILD;
    let mut calls = Calls::new(elevated, 10);
    wit_if::roles::Host::add(
        &mut Cap::new(&mut calls, &mut ctx),
        MEMBER,
        manager_role,
        None,
    )
    .await
    .unwrap();
    assert!(
        f.discord
            .member_of(GUILD, MEMBER)
            .unwrap()
            .roles
            .contains(&manager_role)
    );
}

#[tokio::test]
async fn direct_messages_go_only_to_members_of_the_guild() {
    let f = fixture().await;
    let mut calls = Calls::new(grant(&[Capability::Members]), 10);
    let mut ctx = f.discord();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let err = wit_if::members::Host::send_dm(&mut cap, 777, MessageBody::text("hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    wit_if::members::Host::send_dm(&mut cap, MEMBER, MessageBody::text("hi"))
        .await
        .unwrap();
}

#[tokio::test]
async fn scheduler_rounds_short_delays_up_and_caps_pending_jobs() {
    let f = fixture().await;
    let mut calls = Calls::new(grant(&[Capability::Scheduler]), 10);
    let mut ctx = scheduler::SchedulerCtx {
        store: f.store.clone(),
        scope: scope(),
        pending_jobs: 2,
    };
    let mut cap = Cap::new(&mut calls, &mut ctx);
    for _ in 0..2 {
        wit_if::scheduler::Host::schedule(&mut cap, "tick".into(), String::new(), 0)
            .await
            .unwrap();
    }
    let err = wit_if::scheduler::Host::schedule(&mut cap, "tick".into(), String::new(), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");
    assert!(matches!(
        calls.effects()[0],
        Effect::JobScheduled {
            delay_seconds: townes_limits::scheduler::MIN_DELAY_SECONDS,
            ..
        }
    ));
}

#[tokio::test]
async fn audit_entries_are_capped_per_hour_across_invocations() {
    let f = fixture().await;
    let rates = Arc::new(Rates::default());
    for invocation in 0..2 {
        let mut calls = Calls::new(grant(&[Capability::Audit]), 10);
        let mut ctx = audit::AuditCtx {
            store: f.store.clone(),
            scope: scope(),
            rates: rates.clone(),
            audit_per_hour: 3,
        };
        let mut cap = Cap::new(&mut calls, &mut ctx);
        let mut written = 0;
        for _ in 0..3 {
            if wit_if::audit::Host::write(&mut cap, "did".into(), String::new())
                .await
                .is_ok()
            {
                written += 1;
            }
        }
        assert_eq!(
            written,
            if invocation == 0 { 3 } else { 0 },
            "invocation {invocation}"
        );
    }
}

#[tokio::test]
async fn log_lines_are_escaped_truncated_and_capped() {
    let mut calls = Calls::new(grant(&[Capability::Log]), 1000);
    let mut ctx = log::LogCtx {
        scope: scope(),
        rates: Arc::default(),
        lines_per_minute: 1000,
        lines: Vec::new(),
    };
    let mut cap = Cap::new(&mut calls, &mut ctx);
    wit_if::log::Host::write(&mut cap, wit_if::log::Level::Info, "ok\nINFO forged".into()).await;
    wit_if::log::Host::write(&mut cap, wit_if::log::Level::Info, "é".repeat(4096)).await;
    for _ in 0..500 {
        wit_if::log::Host::write(&mut cap, wit_if::log::Level::Info, "x".into()).await;
    }
    assert_eq!(ctx.lines[0], "ok\\nINFO forged");
    assert!(ctx.lines[1].len() <= 1024 && ctx.lines[1].ends_with('é'));
    assert_eq!(ctx.lines.len(), 100);
}

#[test]
fn truncation_and_escaping() {
    assert_eq!(log::truncated("héllo", 2), "h");
    assert_eq!(
        log::escape_controls("ok\nINFO forged\u{1b}[31m"),
        "ok\\nINFO forged\\u{1b}[31m"
    );
}

#[tokio::test]
async fn history_pages_backwards_within_the_allow_list_and_hides_content_without_the_grant() {
    use wit_if::history::{Attachment, Host as _, PastMessage};
    let f = fixture().await;
    let ada = f.discord.member_of(GUILD, MEMBER).unwrap().user;
    let secret = GUILD + 5;
    f.discord
        .with_guild(GUILD, |g| {
            g.channels.insert(secret, "secret".into());
            for id in 1..=5u64 {
                g.post(
                    GENERAL,
                    PastMessage {
                        id,
                        author: ada.clone(),
                        avatar: None,
                        content: format!("message {id}"),
                        timestamp: "2026-12-07T00:00:00Z".into(),
                        edited_timestamp: None,
                        embeds: vec![],
                        attachments: vec![Attachment {
                            id: 100 + id,
                            filename: "a.txt".into(),
                            content_type: None,
                            size: 1,
                            url: "https://cdn.example/a.txt".into(),
                        }],
                    },
                );
            }
        })
        .unwrap();
    let ids = |page: &[PastMessage]| page.iter().map(|m| m.id).collect::<Vec<_>>();

    let mut calls = Calls::new(
        Grant {
            channels: Some(vec![GENERAL]),
            ..grant(&[Capability::Messages, Capability::MessageContent])
        },
        100,
    );
    let mut ctx = f.discord();
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let newest = cap.read(GENERAL, None, 2).await.unwrap();
    assert_eq!(ids(&newest), [5, 4]);
    assert_eq!(newest[0].content, "message 5");
    assert_eq!(
        ids(&cap.read(GENERAL, Some(4), 100).await.unwrap()),
        [3, 2, 1]
    );
    assert_eq!(
        cap.read(secret, None, 10).await.unwrap_err(),
        Error::Denied(Capability::Messages),
        "outside the allow-list"
    );
    for limit in [0, 101] {
        assert!(matches!(
            cap.read(GENERAL, None, limit).await,
            Err(Error::InvalidArgument(_))
        ));
    }

    let mut calls = Calls::new(grant(&[Capability::Messages]), 100);
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let blind = cap.read(GENERAL, None, 1).await.unwrap();
    assert_eq!(blind[0].id, 5);
    assert_eq!(blind[0].author.username, "ada");
    assert!(blind[0].content.is_empty() && blind[0].attachments.is_empty());

    let mut calls = Calls::new(grant(&[Capability::Storage]), 100);
    let mut cap = Cap::new(&mut calls, &mut ctx);
    assert_eq!(
        cap.read(GENERAL, None, 1).await.unwrap_err(),
        Error::Denied(Capability::Messages)
    );
}

/// `copy-attachment` reads the channel, so it needs what `history.read`
/// with content needs besides storage; it keeps the attachment's type and is
/// held to the plan's bytes per file.
#[tokio::test]
async fn attachments_are_copied_only_with_read_grants_and_within_the_file_quota() {
    use wit_if::files::Host as _;
    use wit_if::history::{Attachment, PastMessage};
    let f = fixture().await;
    let ada = f.discord.member_of(GUILD, MEMBER).unwrap().user;
    let secret = GUILD + 5;
    let attachment = |id: u64, content_type: &str, size: u32| Attachment {
        id,
        filename: "cat.png".into(),
        content_type: Some(content_type.into()),
        size,
        url: "https://cdn.discordapp.com/attachments/1/2/cat.png".into(),
    };
    f.discord
        .with_guild(GUILD, |g| {
            g.channels.insert(secret, "secret".into());
            for channel in [GENERAL, secret] {
                g.post(
                    channel,
                    PastMessage {
                        id: 7,
                        author: ada.clone(),
                        avatar: None,
                        content: "look".into(),
                        timestamp: "2026-12-07T00:00:00Z".into(),
                        edited_timestamp: None,
                        embeds: vec![],
                        attachments: vec![
                            attachment(70, "image/png", 4),
                            attachment(71, "NOT A TYPE", 3),
                            attachment(72, "image/png", 80),
                        ],
                    },
                );
            }
            g.attachment_bytes.insert(70, b"\x89PNG".to_vec());
            g.attachment_bytes.insert(71, b"abc".to_vec());
            g.attachment_bytes.insert(72, vec![0; 80]);
        })
        .unwrap();
    let mut ctx = files::FilesCtx {
        store: f.store.clone(),
        scope: scope(),
        quota: crate::store::FileQuota {
            max_bytes: 1000,
            max_files: 10,
            max_file_bytes: 60,
        },
        links: Arc::new(files::FileLinks::new(
            f.store.clone(),
            "https://api.example",
        )),
        discord: f.discord.clone(),
    };
    let needed = [
        Capability::Storage,
        Capability::Messages,
        Capability::MessageContent,
    ];
    let readable = |without: Option<Capability>| Grant {
        channels: Some(vec![GENERAL]),
        ..grant(
            &needed
                .into_iter()
                .filter(|c| Some(*c) != without)
                .collect::<Vec<_>>(),
        )
    };
    let mut calls = Calls::new(readable(None), 100);
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let copied = cap
        .copy_attachment("t/cat.png".into(), GENERAL, 7, 70)
        .await
        .unwrap();
    assert_eq!(
        (copied.content_type.as_str(), copied.size),
        ("image/png", 4)
    );
    assert_eq!(
        cap.get("t/cat.png".into()).await.unwrap(),
        Some(b"\x89PNG".to_vec())
    );
    let odd = cap
        .copy_attachment("t/odd".into(), GENERAL, 7, 71)
        .await
        .unwrap();
    assert_eq!(odd.content_type, "application/octet-stream");
    assert!(matches!(
        cap.copy_attachment("t/big".into(), GENERAL, 7, 72).await,
        Err(Error::QuotaExceeded(_))
    ));
    assert!(matches!(
        cap.copy_attachment("t/none".into(), GENERAL, 7, 99).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        cap.copy_attachment("t/secret".into(), secret, 7, 70)
            .await
            .unwrap_err(),
        Error::Denied(Capability::Messages),
        "outside the allow-list"
    );
    for missing in [Capability::Messages, Capability::MessageContent] {
        let mut calls = Calls::new(readable(Some(missing)), 100);
        let mut cap = Cap::new(&mut calls, &mut ctx);
        assert_eq!(
            cap.copy_attachment("t/x".into(), GENERAL, 7, 70)
                .await
                .unwrap_err(),
            Error::Denied(missing)
        );
    }
}

#[tokio::test]
async fn files_are_held_to_their_quota_and_links_grant_one_file_until_they_expire() {
    use wit_if::files::Host as _;
    let f = fixture().await;
    let links = Arc::new(files::FileLinks::new(
        f.store.clone(),
        "https://api.example",
    ));
    let mut ctx = files::FilesCtx {
        store: f.store.clone(),
        scope: scope(),
        quota: crate::store::FileQuota {
            max_bytes: 100,
            max_files: 2,
            max_file_bytes: 60,
        },
        links: links.clone(),
        discord: f.discord.clone(),
    };
    let mut calls = Calls::new(grant(&[Capability::Storage]), 100);
    let mut cap = Cap::new(&mut calls, &mut ctx);
    let html = "text/html; charset=utf-8";
    cap.put("a.html".into(), html.into(), vec![b'a'; 50])
        .await
        .unwrap();
    assert!(matches!(
        cap.put("big".into(), html.into(), vec![0; 61]).await,
        Err(Error::QuotaExceeded(_))
    ));
    assert!(matches!(
        cap.put("b".into(), html.into(), vec![0; 51]).await,
        Err(Error::QuotaExceeded(_)),
    ));
    cap.put("a.html".into(), html.into(), vec![b'b'; 60])
        .await
        .unwrap();
    cap.put("b".into(), "image/png".into(), vec![0; 40])
        .await
        .unwrap();
    assert!(
        matches!(
            cap.put("c".into(), html.into(), vec![]).await,
            Err(Error::QuotaExceeded(_))
        ),
        "a third file"
    );
    for (name, content_type) in [
        ("../etc", html),
        ("/abs", html),
        ("a b", html),
        ("x", "TEXT/HTML"),
    ] {
        assert!(
            matches!(
                cap.put(name.into(), content_type.into(), vec![]).await,
                Err(Error::InvalidArgument(_))
            ),
            "{name} {content_type}"
        );
    }
    assert_eq!(
        cap.get("a.html".into()).await.unwrap(),
        Some(vec![b'b'; 60])
    );
    let names: Vec<String> = cap
        .list_prefix(String::new(), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["a.html", "b"]);
    assert!(cap.delete("b".into()).await.unwrap());
    assert_eq!(
        f.store.file_usage(&scope()).await.unwrap(),
        crate::store::FileUsage {
            bytes: 60,
            files: 1
        }
    );

    // A link names one file of one scope; any change to it, or time, voids it.
    assert!(matches!(
        cap.link("nope".into(), 60).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        cap.link("a.html".into(), 59).await,
        Err(Error::InvalidArgument(_))
    ));
    let url = cap.link("a.html".into(), 3600).await.unwrap();
    let token = url.strip_prefix("https://api.example/files/").unwrap();
    let linked = links.check(token).await.unwrap().unwrap();
    assert_eq!((linked.scope, linked.name.as_str()), (scope(), "a.html"));
    let (payload, tag) = token.split_once('.').unwrap();
    let forged_payload = URL_SAFE_NO_PAD.encode(
        String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap())
            .unwrap()
            .replacen(&GUILD.to_string(), "2000", 1),
    );
    for forged in [
        format!("{forged_payload}.{tag}"),
        format!("{payload}.{}", &tag[1..]),
        format!("{payload}x.{tag}"),
        "garbage".to_string(),
    ] {
        assert_eq!(links.check(&forged).await.unwrap(), None, "{forged}");
    }
    let soon = chrono::Utc::now() + chrono::Duration::seconds(1);
    let short = links.sign(&scope(), "a.html", soon).await.unwrap();
    let short = short.strip_prefix("https://api.example/files/").unwrap();
    assert!(links.check(short).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(links.check(short).await.unwrap(), None, "expired");
    // The key is the database's: another process's signer accepts the link.
    let other = files::FileLinks::new(f.store.clone(), "https://elsewhere.example");
    assert!(other.check(token).await.unwrap().is_some());
}

#[tokio::test]
async fn a_feature_flooding_live_events_stops_at_its_allowance_and_cannot_pose_as_the_host() {
    use wit_if::live::Host as _;
    let live = crate::live::Live::local();
    let mut heard = live.subscribe();
    let rates = Arc::new(Rates::default());
    let ctx = |feature: &str| live::LiveCtx {
        live: live.clone(),
        scope: Scope::new(GUILD, feature),
        rates: rates.clone(),
    };
    let mut calls = Calls::new(grant(&[]), 10_000);
    let mut flooder = ctx("flooder");
    let mut cap = Cap::new(&mut calls, &mut flooder);
    for _ in 0..live::PER_MINUTE {
        cap.publish("ticket_update".into(), "{}".into())
            .await
            .unwrap();
    }
    assert!(matches!(
        cap.publish("ticket_update".into(), "{}".into()).await,
        Err(Error::QuotaExceeded(_))
    ));
    for (kind, data) in [
        ("audit_log", "{}".to_string()),
        ("subscribed", "{}".to_string()),
        ("Ticket", "{}".to_string()),
        ("ticket_update", "not json".to_string()),
        ("ticket_update", format!("\"{}\"", "x".repeat(16 * 1024))),
    ] {
        assert!(
            matches!(
                cap.publish(kind.into(), data).await,
                Err(Error::InvalidArgument(_))
            ),
            "{kind}"
        );
    }
    // Another feature of the same guild keeps its own allowance.
    let mut calls = Calls::new(grant(&[]), 10);
    let mut other = ctx("other");
    Cap::new(&mut calls, &mut other)
        .publish("notes_update".into(), r#"{"n":1}"#.into())
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Ok(event) = heard.try_recv() {
        kinds.push((
            event.kind.feature().unwrap().to_string(),
            event.kind.as_str().to_string(),
        ));
    }
    assert_eq!(
        kinds.len(),
        live::PER_MINUTE as usize + 1,
        "only what was allowed went out"
    );
    assert_eq!(
        kinds.last().unwrap(),
        &("other".to_string(), "notes_update".to_string())
    );
}
