//! `townes dev`: the feature author's local loop. It starts the offline
//! playground as `townes serve` does (without playing its script), then reads
//! commands from stdin — say something, run a slash command, join, react, click
//! a button — acting as one of the guild's users, and prints everything the bot
//! does as it happens.
//!
//! What the bot does is read from the simulator's record of REST requests, in
//! arrival order: that is exactly what the platform asked Discord to do
//! (messages, DMs, interaction answers, role changes), including what features
//! do on their own (a level-up, a scheduled job), not only answers to the
//! person's last command.

mod input;
mod narrator;
mod options;
mod people;
mod session;
#[cfg(test)]
mod tests;

use super::playground::{Playground, describe};
use super::serve::{JournalRetention, serve_until, shutdown_signal};
use super::{Settings, open_store, runtime_config};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use townes::platform::connect;
use townes_discord_sim::{Interaction, Recorded, SimConfig, SimMessage, Simulator};

use input::*;
use narrator::*;
use options::*;
use people::*;
use session::*;

#[derive(clap::Args)]
pub struct DevArgs {
    /// Feature components (.wasm) to install and enable in the playground.
    components: Vec<PathBuf>,
}

/// How long the bot must stay silent after a command before the next one is
/// read: its answers arrive over the gateway and REST, a few ms to a few
/// hundred apart, and a transcript reads best when they follow their cause.
const QUIET: Duration = Duration::from_millis(500);
/// The longest a command waits for the bot to go quiet (a feature that keeps
/// posting must not block the person).
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
/// How long to wait for the answer to an interaction (Discord allows 3 s).
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How long a deferred answer may take (Discord allows 15 minutes; a feature
/// in the playground that needs more than this is worth hearing about).
const DEFERRED_WAIT: Duration = Duration::from_secs(15);
/// How often the simulator's record is read for new requests.
const TICK: Duration = Duration::from_millis(50);
/// A request still unanswered after this is told anyway, so one that never
/// finishes cannot hold back the rest of the story.
const STUCK: Duration = Duration::from_secs(5);
/// How long a shutdown waits for in-flight Discord calls.
const DRAIN: Duration = Duration::from_secs(10);

const HELP: &str = "\
commands (you act in #general):
  <text>                           say it (so !hello runs a prefix command)
  say <text>                       say text that starts with one of these words
  /name [sub] key=value …          run a slash command; values like 12, true, @bob,
                                   @Member, #general, \"text with spaces\"
  as <name>                        act as another member (ada owns the guild)
  join <name>                      someone joins (a new name is a new user); you act as them
  leave <name>                     someone leaves
  react <emoji>                    react to the last message in #general
  click <custom_id>                click a button on the bot's latest message
  choose <custom_id> <value>…      pick values in a select menu on it
  modal <custom_id> field=value …  submit a form the bot opened
  who                              the members and their roles
  help                             this list
  quit                             stop (so do Ctrl-C and the end of input)";

pub async fn run(settings: &Settings, args: DevArgs) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let (playground, connection) = Playground::start(settings, &store, &args.components).await?;
    let running = connect(store, runtime_config(settings)?, connection).await?;
    playground.ready().await?;
    wait_for_commands(&playground).await;
    let narrator = Arc::new(Mutex::new(Narrator::new(&playground)));
    // Tell what happened while connecting (the commands registered) before the help.
    narrator.lock().await.catch_up();
    let tail = tokio::spawn(narrate(narrator.clone()));
    let mut dev = Dev::new(&playground, narrator.clone());
    println!("you are ada, the owner of \"Playground\" (admin), in #general; the bot is connected");
    println!("{HELP}");
    let lines = read_lines()?;
    // Listen before the first prompt, so an early interrupt is seen.
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    // `serve_until` also runs scheduled jobs and flushes usage, as `serve` does;
    // it returns on Ctrl-C or SIGTERM, the session on `quit` or the end of input.
    let interactive = dev.interactive;
    let outcome = tokio::select! {
        result = serve_until(&running, None, JournalRetention::default(), shutdown.as_mut()) => {
            if interactive {
                // End the prompt's line, which Ctrl-C left open.
                println!();
            }
            result
        }
        result = dev.session(lines) => result,
    };
    tail.abort();
    narrator.lock().await.catch_up();
    running.shutdown(DRAIN).await?;
    println!("stopped");
    outcome
}

/// Slash commands are registered just after the guild is announced; waiting for
/// that lets `/name` type its options from the registration.
async fn wait_for_commands(playground: &Playground) {
    let any_slash = playground
        .features
        .iter()
        .any(|m| m.commands.iter().any(|c| c.slash));
    let guild = playground.guild.guild_id;
    let deadline = Instant::now() + Duration::from_secs(10);
    while any_slash && playground.sim.command_overwrites(guild) == 0 {
        if Instant::now() > deadline {
            tracing::warn!("the bot has not registered its slash commands within 10 s");
            return;
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Lines from stdin. A plain thread reads them: tokio's stdin reads on its
/// blocking pool, which the runtime waits for on exit — after Ctrl-C that would
/// hang until the person pressed Enter. The channel closes at the end of input.
fn read_lines() -> anyhow::Result<mpsc::Receiver<String>> {
    let (sender, receiver) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let line = match line {
                    Ok(line) => line,
                    Err(error) => {
                        eprintln!("error: reading stdin: {error}");
                        return;
                    }
                };
                if sender.blocking_send(line).is_err() {
                    return;
                }
            }
        })?;
    Ok(receiver)
}

/// Tells what the bot does, every tick, until aborted.
async fn narrate(narrator: Arc<Mutex<Narrator>>) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        narrator.lock().await.catch_up();
    }
}
