//! `townes dev`: a person's commands on stdin, what the bot does on stdout.
//! Needs the built components (`cargo xtask build-guests`).

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Fails the test instead of hanging it if `dev` never stops.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn dev_acts_as_members_and_prints_what_the_bot_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::townes_command(dir.path())
        .args([
            "dev",
            &common::component_path("hello"),
            &common::component_path("welcome"),
            &common::component_path("xp"),
        ])
        .env_remove("DISCORD_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"join carol\n!hello\n/rank\nas dave\nas ada\n/welcome-test\nquit\n")
        .unwrap();
    drop(stdin);
    // Read on a thread, so a `dev` that never stops fails the test below.
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("dev did not stop within {LIMIT:?} of `quit`");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines = reader.join().unwrap();
    let has = |pred: &dyn Fn(&str) -> bool| lines.iter().any(|l| pred(l));
    assert!(status.success(), "{status:?}\n{lines:#?}");
    // Piped input is echoed after a prompt naming who acts: `join` made carol act.
    assert!(has(&|l| l == "carol › !hello"), "{lines:#?}");
    assert!(
        has(&|l| l.starts_with("bot → #general: Welcome @carol to Playground!")),
        "the welcome for carol: {lines:#?}"
    );
    assert!(
        has(&|l| l == "bot → #general: Hello, carol! (greeting #1 in this server)"),
        "the hello reply: {lines:#?}"
    );
    assert!(
        has(&|l| l.starts_with("bot answers carol: @carol is") && l.contains("XP")),
        "the rank answer: {lines:#?}"
    );
    assert!(
        has(&|l| l.starts_with("error: nobody is called \"dave\"") && l.contains("join dave")),
        "a hint for an unknown user: {lines:#?}"
    );
    assert!(
        has(&|l| l.starts_with("bot answers ada (only they see it): Welcome @ada")),
        "the welcome preview: {lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("stopped"),
        "{lines:#?}"
    );
}
