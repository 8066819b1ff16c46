//! Features written in other languages run in the same sandbox: a Python
//! component built with componentize-py (`examples/python-counter`, built by
//! `cargo xtask build-guests`) installs under the same validation and runs under
//! the default limits.

mod common;

use std::sync::Arc;
use townes::discord::{LocalDiscord, LocalGuild};
use townes::grants::Approval;
use townes::marketplace::Marketplace;
use townes::runtime::{Runtime, RuntimeConfig};
use townes::store::Guild;
use townes::wit::{CommandInvocation, CommandSource, Reply};

fn python_counter() -> Option<Vec<u8>> {
    let path = format!("{}/python/python_counter.wasm", common::target_dir());
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if common::in_ci() => {
            panic!("{path}: {e}; `cargo xtask build-guests` builds it with componentize-py")
        }
        Err(e) => {
            eprintln!(
                "skipping the Python feature test: {path}: {e} (needs python3 and pip; `cargo xtask build-guests` builds it)"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_feature_installs_and_runs_under_the_default_limits() {
    let Some(wasm) = python_counter() else { return };
    let (_, store, _guard) = common::sqlite().await;
    store
        .upsert_guild(&Guild::new(1000, "Playground", 1))
        .await
        .unwrap();
    let discord = Arc::new(LocalDiscord::new());
    let mut guild = LocalGuild::new(1000, "Playground");
    guild.add_member(42, "ada", vec![]);
    discord.add_guild(guild);
    let data = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(
        RuntimeConfig {
            pool_instances: 8,
            ..RuntimeConfig::new(data.path())
        },
        store,
        discord.clone(),
    )
    .unwrap();

    let (version, manifest) = runtime
        .install(&wasm)
        .await
        .expect("a componentize-py component importing only what it requests installs");
    assert_eq!(
        (version.feature_id.as_str(), manifest.capabilities.len()),
        ("py-counter", 1)
    );
    Marketplace::new(&runtime, "test")
        .enable(
            1000,
            "py-counter",
            Some("0.1.0"),
            Approval::everything_requested(&manifest.capabilities),
        )
        .await
        .unwrap();

    for expected in ["ada counted 1", "ada counted 2"] {
        let invoker = discord.member_of(1000, 42).unwrap();
        let invocation = CommandInvocation {
            name: "count".into(),
            source: CommandSource::Slash,
            subcommand: None,
            arguments: vec![],
            invoker,
            channel_id: 1001,
        };
        let outcome = runtime.command(1000, "py-counter", invocation, 0).await;
        match &outcome.result {
            Ok(Some(Reply { body, .. })) => {
                eprintln!("{expected}: {:?} of CPU", outcome.cpu);
                assert_eq!(body.content.as_deref(), Some(expected))
            }
            other => panic!("{other:?}; stdio: {}", outcome.stdio),
        }
    }

    // Its manifest's requirements are enforced like any other feature's.
    let err = Marketplace::new(&runtime, "test")
        .enable(1000, "py-counter", Some("0.1.0"), Approval::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("requires storage"), "{err}");
}
