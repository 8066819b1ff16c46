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

use super::playground::{Playground, describe};
use super::serve::{serve_until, shutdown_signal};
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
        result = serve_until(&running, shutdown.as_mut()) => {
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

// ----- the person's commands -----

/// A word of a command line; `quoted` when (part of) it was in double quotes,
/// which makes a slash option's value a string whatever it looks like.
#[derive(Clone, Debug, Default, PartialEq)]
struct Word {
    text: String,
    quoted: bool,
}

/// One line of input.
#[derive(Debug, PartialEq)]
enum Input {
    Nothing,
    Say(String),
    Slash {
        name: String,
        words: Vec<Word>,
    },
    As(String),
    Join(String),
    Leave(String),
    React(String),
    Click(String),
    Choose {
        custom_id: String,
        values: Vec<String>,
    },
    Modal {
        custom_id: String,
        fields: Vec<(String, String)>,
    },
    Who,
    Help,
    Quit,
}

/// Reads a line: `/…` is a slash command, a line starting with one of the
/// command words is that command, anything else is said in #general.
fn parse(line: &str) -> Result<Input, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Input::Nothing);
    }
    if let Some(command) = line.strip_prefix('/') {
        let mut words = words(command)?;
        if words.first().is_none_or(|w| w.text.is_empty() || w.quoted) {
            return Err("a slash command needs a name, like /hello; type help".into());
        }
        let name = words.remove(0).text;
        return Ok(Input::Slash { name, words });
    }
    let (keyword, rest) = match line.split_once(char::is_whitespace) {
        Some((keyword, rest)) => (keyword, rest.trim()),
        None => (line, ""),
    };
    // Anything else is chat, said as typed (quotes and all).
    if !KEYWORDS.contains(&keyword) {
        return Ok(Input::Say(line.to_string()));
    }
    if keyword == "say" {
        return match rest {
            "" => Err(usage("say <text>")),
            text => Ok(Input::Say(text.to_string())),
        };
    }
    let args = words(rest)?;
    let input = match keyword {
        "as" => Input::As(one(&args, "as <name>")?),
        "join" => Input::Join(one(&args, "join <name>")?),
        "leave" => Input::Leave(one(&args, "leave <name>")?),
        "react" => Input::React(one(&args, "react <emoji>")?),
        "click" => Input::Click(one(&args, "click <custom_id>")?),
        "choose" => match args.split_first() {
            Some((custom_id, values)) if !values.is_empty() => Input::Choose {
                custom_id: custom_id.text.clone(),
                values: values.iter().map(|w| w.text.clone()).collect(),
            },
            _ => return Err(usage("choose <custom_id> <value>…")),
        },
        "modal" => match args.split_first() {
            Some((custom_id, fields)) => Input::Modal {
                custom_id: custom_id.text.clone(),
                fields: fields.iter().map(pair).collect::<Result<_, _>>()?,
            },
            None => return Err(usage("modal <custom_id> field=value …")),
        },
        _ if !args.is_empty() => return Err(usage(keyword)),
        "who" => Input::Who,
        "help" | "?" => Input::Help,
        "quit" | "exit" => Input::Quit,
        // Not reached: KEYWORDS lists exactly the words above.
        _ => Input::Say(line.to_string()),
    };
    Ok(input)
}

/// The words that start a command rather than chat.
const KEYWORDS: &[&str] = &[
    "say", "as", "join", "leave", "react", "click", "choose", "modal", "who", "help", "?", "quit",
    "exit",
];

/// The single argument of a command.
fn one(args: &[Word], form: &str) -> Result<String, String> {
    match args {
        [word] => Ok(word.text.clone()),
        _ => Err(usage(form)),
    }
}

fn usage(form: &str) -> String {
    format!("usage: {form} (to say this in #general instead, start the line with `say`)")
}

/// `key=value`.
fn pair(word: &Word) -> Result<(String, String), String> {
    match word.text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!(
            "expected name=value, not {:?}; quote values with spaces: text=\"hello there\"",
            word.text
        )),
    }
}

/// Splits at whitespace outside double quotes; the quotes themselves go.
fn words(input: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut in_quotes = false;
    for c in input.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                current.get_or_insert_with(Word::default).quoted = true;
            }
            c if c.is_whitespace() && !in_quotes => words.extend(current.take()),
            c => current.get_or_insert_with(Word::default).text.push(c),
        }
    }
    if in_quotes {
        return Err("a quote is not closed".into());
    }
    words.extend(current);
    Ok(words)
}

// ----- slash command options -----

/// Discord's option types.
mod kind {
    pub const SUBCOMMAND: u64 = 1;
    pub const GROUP: u64 = 2;
    pub const STRING: u64 = 3;
    pub const INTEGER: u64 = 4;
    pub const BOOLEAN: u64 = 5;
    pub const USER: u64 = 6;
    pub const CHANNEL: u64 = 7;
    pub const ROLE: u64 = 8;
    pub const MENTIONABLE: u64 = 9;
    pub const NUMBER: u64 = 10;
}

/// Discord's `data.options` for `/name words…`: leading bare words pick a
/// subcommand group and subcommand, `key=value` words are options typed as the
/// registered command declares them — guessed from the value for a command or
/// option Discord does not know, which is still sent, as a stale client would.
fn slash_options(
    command: Option<&Value>,
    words: &[Word],
    people: &Directory,
) -> Result<Value, String> {
    let mut declared = command.and_then(|c| c["options"].as_array());
    let mut path = Vec::new();
    let mut rest = words;
    while let Some((word, tail)) = rest.split_first()
        && !word.quoted
        && !word.text.contains('=')
    {
        let (kind, options) = subcommand(declared, &word.text)?;
        path.push((kind, word.text.clone()));
        declared = options;
        rest = tail;
    }
    let options = rest
        .iter()
        .map(|word| typed_option(declared, word, people))
        .collect::<Result<Vec<_>, _>>()?;
    // Nest the options under the subcommand path, innermost first.
    Ok(path.into_iter().rev().fold(
        Value::Array(options),
        |inner, (kind, name)| json!([{ "type": kind, "name": name, "options": inner }]),
    ))
}

/// The subcommand (or group) `name` among `declared`, and its own options.
fn subcommand<'a>(
    declared: Option<&'a Vec<Value>>,
    name: &str,
) -> Result<(u64, Option<&'a Vec<Value>>), String> {
    let Some(declared) = declared else {
        return Ok((kind::SUBCOMMAND, None));
    };
    let subcommands: Vec<&Value> = declared
        .iter()
        .filter(|o| matches!(o["type"].as_u64(), Some(kind::SUBCOMMAND | kind::GROUP)))
        .collect();
    if subcommands.is_empty() {
        return Err(format!(
            "expected name=value, not {name:?}; quote values with spaces: text=\"hello there\""
        ));
    }
    match subcommands.iter().find(|o| o["name"] == name) {
        Some(found) => Ok((
            found["type"].as_u64().unwrap_or(kind::SUBCOMMAND),
            found["options"].as_array(),
        )),
        None => {
            let names: Vec<&str> = subcommands
                .iter()
                .filter_map(|o| o["name"].as_str())
                .collect();
            Err(format!(
                "no subcommand {name:?} here; there are: {}",
                names.join(", ")
            ))
        }
    }
}

/// One `key=value` as an option of the declared (or guessed) type.
fn typed_option(
    declared: Option<&Vec<Value>>,
    word: &Word,
    people: &Directory,
) -> Result<Value, String> {
    let (key, raw) = pair(word)?;
    let kind = declared
        .and_then(|options| options.iter().find(|o| o["name"] == key.as_str()))
        .and_then(|o| o["type"].as_u64())
        .unwrap_or_else(|| guess_kind(&raw, word.quoted, people));
    let value = option_value(kind, &key, &raw, people)?;
    Ok(json!({ "type": kind, "name": key, "value": value }))
}

/// The type a value looks like, for an option Discord does not know.
fn guess_kind(raw: &str, quoted: bool, people: &Directory) -> u64 {
    if quoted {
        kind::STRING
    } else if raw.parse::<i64>().is_ok() {
        kind::INTEGER
    } else if raw == "true" || raw == "false" {
        kind::BOOLEAN
    } else if raw.starts_with('@') && people.user_ref(raw).is_some() {
        kind::USER
    } else if raw.starts_with('@') && people.role_ref(raw).is_some() {
        kind::ROLE
    } else if raw.starts_with('#') && people.channel_ref(raw).is_some() {
        kind::CHANNEL
    } else {
        kind::STRING
    }
}

/// The value as Discord sends an option of `kind`: numbers and booleans as
/// JSON, users, channels and roles as snowflake strings.
fn option_value(kind: u64, key: &str, raw: &str, people: &Directory) -> Result<Value, String> {
    let bad = |what: &str| format!("option {key} takes {what}, not {raw:?}");
    let snowflake =
        |id: Option<u64>, what: &str| id.map(|id| json!(id.to_string())).ok_or_else(|| bad(what));
    match kind {
        kind::INTEGER => raw
            .parse::<i64>()
            .map(|n| json!(n))
            .map_err(|_| bad("a whole number")),
        kind::NUMBER => match raw.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(json!(n)),
            _ => Err(bad("a number")),
        },
        kind::BOOLEAN => raw
            .parse::<bool>()
            .map(|b| json!(b))
            .map_err(|_| bad("true or false")),
        kind::USER => snowflake(people.user_ref(raw), "a member, like @ada"),
        kind::CHANNEL => snowflake(people.channel_ref(raw), "a channel, like #general"),
        kind::ROLE => snowflake(people.role_ref(raw), "a role, like @Member"),
        kind::MENTIONABLE => snowflake(
            people.user_ref(raw).or_else(|| people.role_ref(raw)),
            "a member or a role, like @ada or @Member",
        ),
        _ => Ok(json!(raw)),
    }
}

// ----- who is who -----

/// The guild's people, roles and channel by name and by id: the person types
/// names, Discord speaks ids.
struct Directory {
    /// Users by name, including those `join` made.
    users: BTreeMap<String, u64>,
    /// Highest first.
    roles: Vec<(u64, String)>,
    general: u64,
    bot: (u64, String),
}

impl Directory {
    fn new(playground: &Playground, bot_name: String) -> Directory {
        Directory {
            users: playground
                .users()
                .iter()
                .map(|(name, id)| (name.to_string(), *id))
                .collect(),
            roles: playground.roles.clone(),
            general: playground.general(),
            bot: (playground.sim.bot_user_id(), bot_name),
        }
    }

    fn user(&self, name: &str) -> Option<u64> {
        self.users.get(name).copied()
    }

    fn user_name(&self, id: u64) -> Option<&str> {
        if id == self.bot.0 {
            return Some(&self.bot.1);
        }
        self.users
            .iter()
            .find(|(_, known)| **known == id)
            .map(|(name, _)| name.as_str())
    }

    /// A user's name for narration; an unknown id stays an id.
    fn name(&self, id: u64) -> String {
        self.user_name(id)
            .map_or_else(|| format!("user {id}"), str::to_string)
    }

    fn role_name(&self, id: u64) -> Option<&str> {
        self.roles
            .iter()
            .find(|(known, _)| *known == id)
            .map(|(_, name)| name.as_str())
    }

    fn role(&self, id: u64) -> String {
        self.role_name(id)
            .map_or_else(|| format!("role {id}"), |name| format!("the {name} role"))
    }

    fn channel_name(&self, id: u64) -> Option<&str> {
        (id == self.general).then_some("general")
    }

    /// `@name` or an id.
    fn user_ref(&self, raw: &str) -> Option<u64> {
        match raw.strip_prefix('@') {
            Some(name) => self.user(name),
            None => raw.parse().ok(),
        }
    }

    /// `@Role` (any case) or an id.
    fn role_ref(&self, raw: &str) -> Option<u64> {
        match raw.strip_prefix('@') {
            Some(name) => self
                .roles
                .iter()
                .find(|(_, known)| known.eq_ignore_ascii_case(name))
                .map(|(id, _)| *id),
            None => raw.parse().ok(),
        }
    }

    /// `#general` or an id.
    fn channel_ref(&self, raw: &str) -> Option<u64> {
        match raw.strip_prefix('#') {
            Some("general") => Some(self.general),
            Some(_) => None,
            None => raw.parse().ok(),
        }
    }

    /// The text with mentions of known users, roles and channels (`<@id>`,
    /// `<@!id>`, `<@&id>`, `<#id>`) shown as `@name` and `#name`.
    fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            match self.mention(tail) {
                Some((len, name)) => {
                    out.push_str(&name);
                    rest = &tail[len..];
                }
                None => {
                    out.push('<');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The mention `text` starts with, as (its length, how to show it).
    fn mention(&self, text: &str) -> Option<(usize, String)> {
        let end = text.find('>')?;
        let inner = &text[1..end];
        let shown = if let Some(id) = inner.strip_prefix("@&") {
            format!("@{}", self.role_name(id.parse().ok()?)?)
        } else if let Some(id) = inner.strip_prefix('#') {
            format!("#{}", self.channel_name(id.parse().ok()?)?)
        } else {
            let id = inner.strip_prefix('@')?;
            let id = id.strip_prefix('!').unwrap_or(id);
            format!("@{}", self.user_name(id.parse().ok()?)?)
        };
        Some((end + 1, shown))
    }
}

// ----- the session -----

/// The person at the keyboard: who they act as, and how they act.
struct Dev {
    sim: Simulator,
    guild: u64,
    general: u64,
    owner: u64,
    me: u64,
    narrator: Arc<Mutex<Narrator>>,
    /// A terminal gets a prompt; piped input is echoed after one instead, so
    /// the output reads as a transcript.
    interactive: bool,
}

impl Dev {
    fn new(playground: &Playground, narrator: Arc<Mutex<Narrator>>) -> Dev {
        Dev {
            sim: playground.sim.clone(),
            guild: playground.guild.guild_id,
            general: playground.general(),
            owner: playground.ada,
            me: playground.ada,
            narrator,
            interactive: std::io::stdin().is_terminal(),
        }
    }

    /// Reads and performs commands until `quit` or the end of input.
    async fn session(&mut self, mut lines: mpsc::Receiver<String>) -> anyhow::Result<()> {
        loop {
            let me = self.narrator.lock().await.people.name(self.me);
            if self.interactive {
                print!("{me} › ");
                std::io::stdout().flush()?;
            }
            let Some(line) = lines.recv().await else {
                if self.interactive {
                    println!();
                }
                return Ok(());
            };
            if !self.interactive {
                println!("{me} › {line}");
            }
            let outcome = match parse(&line) {
                Ok(Input::Quit) => return Ok(()),
                Ok(input) => self.perform(input).await,
                Err(problem) => Err(problem),
            };
            if let Err(problem) = outcome {
                println!("error: {problem}");
            }
        }
    }

    async fn perform(&mut self, input: Input) -> Result<(), String> {
        match input {
            Input::Nothing | Input::Quit => Ok(()),
            Input::Help => {
                println!("{HELP}");
                Ok(())
            }
            Input::Who => {
                self.who().await;
                Ok(())
            }
            Input::Say(text) => self.say(&text).await,
            Input::Slash { name, words } => self.slash(&name, &words).await,
            Input::As(name) => self.act_as(&name).await,
            Input::Join(name) => self.join(&name).await,
            Input::Leave(name) => self.leave(&name).await,
            Input::React(emoji) => self.react(&emoji).await,
            Input::Click(custom_id) => self.click(&custom_id).await,
            Input::Choose { custom_id, values } => self.choose(&custom_id, &values).await,
            Input::Modal { custom_id, fields } => self.modal(&custom_id, &fields).await,
        }
    }

    async fn say(&self, text: &str) -> Result<(), String> {
        self.check_member().await?;
        self.sim.say(self.guild, self.general, self.me, text).await;
        self.settle(None).await;
        Ok(())
    }

    async fn slash(&self, name: &str, words: &[Word]) -> Result<(), String> {
        self.check_member().await?;
        let registered = self
            .sim
            .guild_commands(self.guild)
            .into_iter()
            .find(|c| c["name"] == name && c["type"] == 1);
        let options = {
            let narrator = self.narrator.lock().await;
            slash_options(registered.as_ref(), words, &narrator.people)?
        };
        if registered.is_none() {
            println!("(/{name} is not registered in this guild; sending it anyway)");
        }
        let slash = self
            .sim
            .slash(self.guild, self.general, self.me, name, options);
        let id = self.start(slash, false).await;
        self.settle(Some(id)).await;
        Ok(())
    }

    async fn act_as(&mut self, name: &str) -> Result<(), String> {
        let id = self.known(name).await?;
        if !self.sim.is_member(self.guild, id) {
            return Err(format!("{name} is not a member; `join {name}` first"));
        }
        self.me = id;
        Ok(())
    }

    async fn join(&mut self, name: &str) -> Result<(), String> {
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || name.len() > 32
        {
            return Err(format!(
                "{name:?} is not a user name; use up to 32 letters, digits, - and _"
            ));
        }
        let id = {
            let mut narrator = self.narrator.lock().await;
            match narrator.people.user(name) {
                Some(id) => id,
                None => {
                    let id = self.sim.create_user(name);
                    narrator.people.users.insert(name.to_string(), id);
                    id
                }
            }
        };
        if self.sim.is_member(self.guild, id) {
            return Err(format!(
                "{name} is already a member; `as {name}` acts as them"
            ));
        }
        self.sim.member_join(self.guild, id).await;
        self.me = id;
        self.settle(None).await;
        Ok(())
    }

    async fn leave(&mut self, name: &str) -> Result<(), String> {
        let id = self.known(name).await?;
        if id == self.owner {
            return Err(format!(
                "{name} owns the guild, and Discord does not let owners leave"
            ));
        }
        if !self.sim.is_member(self.guild, id) {
            return Err(format!("{name} is not a member"));
        }
        self.sim.member_leave(self.guild, id).await;
        // Whoever left cannot act in the guild any more: back to its owner.
        if self.me == id {
            self.me = self.owner;
        }
        self.settle(None).await;
        Ok(())
    }

    async fn react(&self, emoji: &str) -> Result<(), String> {
        self.check_member().await?;
        let last = self
            .sim
            .messages(self.general)
            .pop()
            .ok_or("#general has no messages to react to yet")?;
        self.sim
            .react(self.guild, self.general, last.id, self.me, emoji)
            .await;
        self.settle(None).await;
        Ok(())
    }

    async fn click(&self, custom_id: &str) -> Result<(), String> {
        self.check_member().await?;
        let message = self.message_with(custom_id)?;
        let click = self.sim.click(
            self.guild,
            message.channel_id,
            self.me,
            message.id,
            custom_id,
        );
        let id = self.start(click, true).await;
        self.settle(Some(id)).await;
        Ok(())
    }

    async fn choose(&self, custom_id: &str, values: &[String]) -> Result<(), String> {
        self.check_member().await?;
        let message = self.message_with(custom_id)?;
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let choose = self.sim.choose(
            self.guild,
            message.channel_id,
            self.me,
            message.id,
            custom_id,
            &values,
        );
        let id = self.start(choose, true).await;
        self.settle(Some(id)).await;
        Ok(())
    }

    async fn modal(&self, custom_id: &str, fields: &[(String, String)]) -> Result<(), String> {
        self.check_member().await?;
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let submit = self
            .sim
            .submit_modal(self.guild, self.general, self.me, custom_id, &fields);
        let id = self.start(submit, false).await;
        self.settle(Some(id)).await;
        Ok(())
    }

    /// Lists the members (by name) and their roles, highest first.
    async fn who(&self) {
        let narrator = self.narrator.lock().await;
        let people = &narrator.people;
        for (name, &id) in &people.users {
            if !self.sim.is_member(self.guild, id) {
                continue;
            }
            let held = self.sim.member_roles(self.guild, id);
            let roles: Vec<&str> = people
                .roles
                .iter()
                .filter(|(role, _)| held.contains(role))
                .map(|(_, role)| role.as_str())
                .collect();
            let mut notes = Vec::new();
            if id == self.owner {
                notes.push("owner");
            }
            if id == self.me {
                notes.push("you");
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            let roles = if roles.is_empty() {
                "no roles".to_string()
            } else {
                roles.join(", ")
            };
            println!("  {name}{notes}: {roles}");
        }
    }

    /// A user the session knows by name.
    async fn known(&self, name: &str) -> Result<u64, String> {
        self.narrator
            .lock()
            .await
            .people
            .user(name)
            .ok_or_else(|| format!("nobody is called {name:?}; `join {name}` brings them in"))
    }

    /// Only members act in the guild, as on Discord.
    async fn check_member(&self) -> Result<(), String> {
        if self.sim.is_member(self.guild, self.me) {
            return Ok(());
        }
        let me = self.narrator.lock().await.people.name(self.me);
        Err(format!(
            "{me} is not a member any more; `join {me}`, or `as <name>` to act as a member"
        ))
    }

    /// The newest bot message in #general carrying a component `custom_id`.
    fn message_with(&self, custom_id: &str) -> Result<SimMessage, String> {
        let bot = self.sim.bot_user_id();
        let with_components: Vec<SimMessage> = self
            .sim
            .messages(self.general)
            .into_iter()
            .filter(|m| m.author_id == bot && !m.components.is_empty())
            .collect();
        let Some(last) = with_components.last() else {
            return Err("no message of the bot in #general has buttons or menus yet".into());
        };
        // An older message's components still work on Discord, so look past the last.
        if let Some(found) = with_components
            .iter()
            .rev()
            .find(|m| custom_ids(&m.components).contains(&custom_id))
        {
            return Ok(found.clone());
        }
        Err(format!(
            "no button or menu {custom_id:?} on the bot's messages; the last one has: {}",
            custom_ids(&last.components).join(", ")
        ))
    }

    /// Starts an interaction and notes it for the narrator. The narrator is
    /// held meanwhile, so it cannot tell the answer before it knows whose it is.
    async fn start(&self, interaction: impl Future<Output = Interaction>, on_message: bool) -> u64 {
        let mut narrator = self.narrator.lock().await;
        let interaction = interaction.await;
        narrator.asked(&interaction, self.me, on_message);
        interaction.id
    }

    /// Waits for the bot to answer the interaction, if any, and then to go
    /// quiet, telling what it does meanwhile.
    async fn settle(&self, interaction: Option<u64>) {
        if let Some(id) = interaction {
            self.await_answer(id).await;
        }
        let deadline = Instant::now() + SETTLE_LIMIT;
        let mut told = None;
        let mut quiet_since = Instant::now();
        loop {
            let (caught_up, now_told) = {
                let mut narrator = self.narrator.lock().await;
                (narrator.catch_up(), narrator.told)
            };
            if !caught_up || told != Some(now_told) {
                told = Some(now_told);
                quiet_since = Instant::now();
            }
            if quiet_since.elapsed() >= QUIET || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(TICK).await;
        }
    }

    async fn await_answer(&self, id: u64) {
        let Some(response) = self.sim.interaction_response(id, ANSWER_WAIT).await else {
            println!(
                "(no answer within {} s: Discord would show \"The application did not respond\")",
                ANSWER_WAIT.as_secs()
            );
            return;
        };
        // A deferred message is answered by an edit; wait for it. (A deferred
        // update may never be followed by one.)
        if response.kind == 5 && self.sim.wait_for_edit(id, DEFERRED_WAIT).await.is_none() {
            println!(
                "(the bot deferred its answer but gave none within {} s)",
                DEFERRED_WAIT.as_secs()
            );
        }
    }
}

// ----- what the bot does -----

/// An interaction the person started.
struct Asked {
    user: u64,
    /// A component's: an update or deferred update edits the message it sits on.
    on_message: bool,
    /// How the bot answered so far: later edits of the answer inherit these.
    ephemeral: bool,
    updates_message: bool,
}

/// Tells, one line each, what the bot asked Discord to do.
struct Narrator {
    sim: Simulator,
    people: Directory,
    asked: HashMap<u64, Asked>,
    /// Interaction tokens (which webhook paths carry) → interaction ids.
    tokens: HashMap<String, u64>,
    /// DM channels → their user, learnt as DMs are told.
    dms: HashMap<u64, u64>,
    /// How many of the simulator's recorded requests have been told.
    told: usize,
    /// Since when the next request to tell has been in flight.
    waiting: Option<(usize, Instant)>,
}

impl Narrator {
    fn new(playground: &Playground) -> Narrator {
        // The playground's simulator runs with the default configuration.
        let bot_name = SimConfig::default().bot_name;
        Narrator {
            sim: playground.sim.clone(),
            people: Directory::new(playground, bot_name),
            asked: HashMap::new(),
            tokens: HashMap::new(),
            dms: HashMap::new(),
            told: 0,
            waiting: None,
        }
    }

    fn asked(&mut self, interaction: &Interaction, user: u64, on_message: bool) {
        self.tokens
            .insert(interaction.token.clone(), interaction.id);
        self.asked.insert(
            interaction.id,
            Asked {
                user,
                on_message,
                ephemeral: false,
                updates_message: false,
            },
        );
    }

    /// Tells every request recorded since the last call, in order, stopping at
    /// one still in flight (its outcome is not known yet). Returns whether all
    /// are told.
    fn catch_up(&mut self) -> bool {
        let requests = self.sim.requests();
        while let Some(request) = requests.get(self.told) {
            if request.status == 0 && !self.stuck(self.told) {
                return false;
            }
            self.told += 1;
            self.waiting = None;
            if let Some(line) = self.tell(request) {
                println!("{line}");
            }
        }
        true
    }

    /// Whether request `index` has been in flight for too long to wait for.
    fn stuck(&mut self, index: usize) -> bool {
        match self.waiting {
            Some((waiting, since)) if waiting == index => since.elapsed() > STUCK,
            _ => {
                self.waiting = Some((index, Instant::now()));
                false
            }
        }
    }

    /// One request in words; `None` for those that change nothing a person
    /// sees (reads, opening a DM channel) and for 429s and 5xx, which the
    /// platform retries.
    fn tell(&mut self, request: &Recorded) -> Option<String> {
        if request.method == "GET" || request.status == 429 || request.status >= 500 {
            return None;
        }
        let body = request.body.clone().unwrap_or(Value::Null);
        let path: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let id = |s: &str| s.parse::<u64>().unwrap_or(0);
        let line = match (request.method.as_str(), path.as_slice()) {
            ("POST", ["channels", channel, "messages"]) => self.posted(id(channel), &body),
            ("PATCH", ["channels", channel, "messages", _]) => format!(
                "bot edits its message in {}: {}",
                self.channel(id(channel)),
                self.message(&body)
            ),
            ("DELETE", ["channels", channel, "messages", _]) => {
                format!("bot deletes a message in {}", self.channel(id(channel)))
            }
            (
                "PUT",
                [
                    "channels",
                    channel,
                    "messages",
                    _,
                    "reactions",
                    emoji,
                    "@me",
                ],
            ) => {
                format!("bot reacts {emoji} in {}", self.channel(id(channel)))
            }
            ("POST", ["interactions", interaction, _, "callback"]) => {
                self.answered(id(interaction), &body)?
            }
            ("PATCH", ["webhooks", _, token, "messages", "@original"]) => {
                self.edited_answer(token, &body)
            }
            ("POST", ["webhooks", _, token]) => self.followed_up(token, &body),
            ("PUT", ["guilds", _, "members", user, "roles", role]) => format!(
                "bot gives {} {}",
                self.people.name(id(user)),
                self.people.role(id(role))
            ),
            ("DELETE", ["guilds", _, "members", user, "roles", role]) => format!(
                "bot takes {} from {}",
                self.people.role(id(role)),
                self.people.name(id(user))
            ),
            ("PATCH", ["guilds", _, "members", user]) => self.member_edited(id(user), &body),
            ("DELETE", ["guilds", _, "members", user]) => {
                format!("bot kicks {}", self.people.name(id(user)))
            }
            ("PUT", ["guilds", _, "bans", user]) => {
                format!("bot bans {}", self.people.name(id(user)))
            }
            ("DELETE", ["guilds", _, "bans", user]) => {
                format!("bot unbans {}", self.people.name(id(user)))
            }
            ("PUT", ["applications", _, "guilds", _, "commands"]) => registered(&body),
            // Opening a DM channel: the DM itself is told next.
            ("POST", ["users", "@me", "channels"]) => return None,
            (method, _) => format!("bot calls {method} {}", request.path),
        };
        Some(if request.status >= 400 {
            format!("{line} — refused by Discord (HTTP {})", request.status)
        } else {
            line
        })
    }

    /// A message the bot posted, in a channel or as a DM.
    fn posted(&mut self, channel: u64, body: &Value) -> String {
        let text = self.message(body);
        match self.dm_recipient(channel) {
            Some(user) => format!("bot DMs {}: {text}", self.people.name(user)),
            None => format!("bot → {}: {text}", self.channel(channel)),
        }
    }

    /// Whose DM channel `channel` is, if it is one.
    fn dm_recipient(&mut self, channel: u64) -> Option<u64> {
        if let Some(user) = self.dms.get(&channel) {
            return Some(*user);
        }
        let user = self.people.users.values().copied().find(|&user| {
            self.sim
                .dm_messages(user)
                .first()
                .is_some_and(|m| m.channel_id == channel)
        })?;
        self.dms.insert(channel, user);
        Some(user)
    }

    fn channel(&self, id: u64) -> String {
        self.people
            .channel_name(id)
            .map_or_else(|| format!("channel {id}"), |name| format!("#{name}"))
    }

    /// A message body in words: its text, embeds, and the components one can
    /// use on it (`click …`, `choose …`), each on an indented line of its own.
    fn message(&self, body: &Value) -> String {
        let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
        let text = describe(body["content"].as_str().unwrap_or(""), &embeds);
        // Keep a multi-line message's layout, indented under its first line.
        let mut out = self.people.render(&text).replace('\n', "\n    ");
        for line in component_lines(&body["components"]) {
            out.push_str("\n    ↳ ");
            out.push_str(&line);
        }
        out
    }

    /// The bot's answer to an interaction; `None` for a silent acknowledgement.
    fn answered(&mut self, interaction: u64, body: &Value) -> Option<String> {
        let kind = body["type"].as_u64().unwrap_or(0);
        let data = &body["data"];
        let ephemeral = data["flags"].as_u64().unwrap_or(0) & 64 != 0;
        let mut user = 0;
        if let Some(asked) = self.asked.get_mut(&interaction) {
            asked.ephemeral = ephemeral;
            asked.updates_message = asked.on_message && matches!(kind, 6 | 7);
            user = asked.user;
        }
        let who = self.people.name(user);
        let only = if ephemeral { " (only they see it)" } else { "" };
        Some(match kind {
            4 => format!("bot answers {who}{only}: {}", self.message(data)),
            5 => format!("bot is thinking about {who}'s command{only}…"),
            // A deferred update: the message stays as it is until an edit.
            6 => return None,
            7 => format!("bot updates its message: {}", self.message(data)),
            9 => self.form(&who, data),
            other => format!("bot answers {who} with an interaction response of type {other}"),
        })
    }

    /// A modal the bot opened, with how to submit it.
    fn form(&self, who: &str, data: &Value) -> String {
        let fields: Vec<String> = components(&data["components"])
            .filter(|c| c["type"] == 4)
            .filter_map(|c| c["custom_id"].as_str())
            .map(|field| format!("{field}=…"))
            .collect();
        format!(
            "bot opens the form {:?} for {who}\n    ↳ modal {} {}",
            data["title"].as_str().unwrap_or(""),
            data["custom_id"].as_str().unwrap_or("?"),
            fields.join(" ")
        )
    }

    /// An edit of `@original`: a deferred answer arriving, or a changed message.
    fn edited_answer(&self, token: &str, body: &Value) -> String {
        let asked = self.tokens.get(token).and_then(|id| self.asked.get(id));
        let text = self.message(body);
        match asked {
            Some(asked) if asked.updates_message => format!("bot updates its message: {text}"),
            Some(asked) => {
                let only = if asked.ephemeral {
                    " (only they see it)"
                } else {
                    ""
                };
                format!("bot answers {}{only}: {text}", self.people.name(asked.user))
            }
            None => format!("bot edits an interaction's answer: {text}"),
        }
    }

    fn followed_up(&self, token: &str, body: &Value) -> String {
        let user = self
            .tokens
            .get(token)
            .and_then(|id| self.asked.get(id))
            .map_or(0, |asked| asked.user);
        let only = if body["flags"].as_u64().unwrap_or(0) & 64 != 0 {
            " (only they see it)"
        } else {
            ""
        };
        format!(
            "bot follows up with {}{only}: {}",
            self.people.name(user),
            self.message(body)
        )
    }

    /// `PATCH /guilds/{g}/members/{u}`: timeouts, nicknames, role sets.
    fn member_edited(&self, user: u64, body: &Value) -> String {
        let who = self.people.name(user);
        let mut changes = Vec::new();
        match body.get("communication_disabled_until") {
            Some(Value::Null) => changes.push(format!("lifts {who}'s timeout")),
            Some(until) => changes.push(format!(
                "times {who} out until {}",
                until.as_str().unwrap_or("?")
            )),
            None => {}
        }
        match body.get("nick") {
            Some(Value::Null) => changes.push(format!("resets {who}'s nickname")),
            Some(nick) => changes.push(format!(
                "renames {who} to {:?}",
                nick.as_str().unwrap_or("")
            )),
            None => {}
        }
        if let Some(roles) = body["roles"].as_array() {
            let names: Vec<String> = roles
                .iter()
                .filter_map(|r| r.as_str().and_then(|r| r.parse().ok()))
                .map(|r| self.people.role(r))
                .collect();
            changes.push(format!("sets {who}'s roles to: {}", names.join(", ")));
        }
        if changes.is_empty() {
            changes.push(format!("edits {who}"));
        }
        format!("bot {}", changes.join(" and "))
    }
}

/// The guild's command registration in words.
fn registered(body: &Value) -> String {
    let names: Vec<String> = body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .map(|name| format!("/{name}"))
        .collect();
    format!(
        "bot registers {} slash command{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(" ")
    )
}

/// The components of a message or modal, out of their action rows.
fn components(value: &Value) -> impl Iterator<Item = &Value> {
    unrow(value.as_array().map_or(&[][..], Vec::as_slice))
}

/// Action rows replaced by what they hold.
fn unrow(items: &[Value]) -> impl Iterator<Item = &Value> {
    items.iter().flat_map(|c| match c["components"].as_array() {
        Some(children) if c["type"] == 1 => children.iter().collect::<Vec<_>>(),
        _ => vec![c],
    })
}

/// The custom ids of a message's buttons and menus.
fn custom_ids(rows: &[Value]) -> Vec<&str> {
    unrow(rows)
        .filter_map(|c| c["custom_id"].as_str())
        .collect()
}

/// How to use each of a message's components from here.
fn component_lines(value: &Value) -> Vec<String> {
    components(value)
        .filter_map(|c| {
            let custom_id = c["custom_id"].as_str().unwrap_or("?");
            let label = c["label"]
                .as_str()
                .or_else(|| c["emoji"]["name"].as_str())
                .unwrap_or("");
            let disabled = if c["disabled"] == true {
                " (disabled)"
            } else {
                ""
            };
            let line = match c["type"].as_u64()? {
                2 if c["style"] == 5 => {
                    format!("link {label:?}: {}", c["url"].as_str().unwrap_or(""))
                }
                2 => format!("click {custom_id}   (button {label:?}{disabled})"),
                3 => {
                    let values: Vec<&str> = c["options"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o["value"].as_str())
                        .collect();
                    format!(
                        "choose {custom_id} <value>…   (menu: {}{disabled})",
                        values.join(", ")
                    )
                }
                5 => format!("choose {custom_id} <user id>…   (user menu{disabled})"),
                6 => format!("choose {custom_id} <role id>…   (role menu{disabled})"),
                7 => format!("choose {custom_id} <id>…   (user or role menu{disabled})"),
                8 => format!("choose {custom_id} <channel id>…   (channel menu{disabled})"),
                _ => return None,
            };
            Some(line)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> Directory {
        Directory {
            users: [("ada".to_string(), 42), ("bob".to_string(), 43)]
                .into_iter()
                .collect(),
            roles: vec![(7, "Admin".into()), (8, "Member".into())],
            general: 100,
            bot: (1, "TownesBot".into()),
        }
    }

    fn word(text: &str) -> Word {
        Word {
            text: text.into(),
            quoted: false,
        }
    }

    #[test]
    fn lines_are_commands_or_said() {
        assert_eq!(parse("!hello"), Ok(Input::Say("!hello".into())));
        assert_eq!(parse("  "), Ok(Input::Nothing));
        assert_eq!(parse("as bob"), Ok(Input::As("bob".into())));
        assert_eq!(parse("say as I said"), Ok(Input::Say("as I said".into())));
        assert!(
            parse("as I said")
                .unwrap_err()
                .starts_with("usage: as <name>")
        );
        assert_eq!(
            parse("/xp set user=@bob"),
            Ok(Input::Slash {
                name: "xp".into(),
                words: vec![word("set"), word("user=@bob")]
            })
        );
        assert_eq!(
            parse("choose color:pick red blue"),
            Ok(Input::Choose {
                custom_id: "color:pick".into(),
                values: vec!["red".into(), "blue".into()]
            })
        );
        assert_eq!(
            parse("modal poll:new question=\"Tea or coffee?\""),
            Ok(Input::Modal {
                custom_id: "poll:new".into(),
                fields: vec![("question".into(), "Tea or coffee?".into())]
            })
        );
        assert!(parse("/").is_err());
        assert!(parse("/echo text=\"open").is_err());
        assert_eq!(parse("quit"), Ok(Input::Quit));
    }

    #[test]
    fn options_are_typed_as_registered() {
        let rank = json!({"name": "rank", "type": 1, "options": [
            {"type": 6, "name": "user"}, {"type": 3, "name": "note"}]});
        let options = slash_options(
            Some(&rank),
            &[word("user=@ada"), word("note=12")],
            &people(),
        )
        .unwrap();
        assert_eq!(
            options,
            json!([{"type": 6, "name": "user", "value": "42"},
                   {"type": 3, "name": "note", "value": "12"}])
        );
        let error = slash_options(Some(&rank), &[word("user=@zed")], &people()).unwrap_err();
        assert!(error.contains("takes a member"), "{error}");
    }

    #[test]
    fn subcommands_nest_their_options() {
        let xp = json!({"name": "xp", "type": 1, "options": [
            {"type": 1, "name": "set", "options": [
                {"type": 6, "name": "user"}, {"type": 4, "name": "amount"}]}]});
        let words = [word("set"), word("user=@bob"), word("amount=200")];
        assert_eq!(
            slash_options(Some(&xp), &words, &people()).unwrap(),
            json!([{"type": 1, "name": "set", "options": [
                {"type": 6, "name": "user", "value": "43"},
                {"type": 4, "name": "amount", "value": 200}]}])
        );
        let error = slash_options(Some(&xp), &[word("give")], &people()).unwrap_err();
        assert!(error.contains("there are: set"), "{error}");
    }

    #[test]
    fn unregistered_options_are_guessed() {
        let quoted = Word {
            text: "text=12".into(),
            quoted: true,
        };
        let words = [
            word("n=3"),
            word("yes=true"),
            word("who=@bob"),
            word("role=@member"),
            word("where=#general"),
            word("s=hi"),
            quoted,
        ];
        let options = slash_options(None, &words, &people()).unwrap();
        let kinds: Vec<u64> = options
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["type"].as_u64().unwrap())
            .collect();
        assert_eq!(kinds, vec![4, 5, 6, 8, 7, 3, 3]);
    }

    #[test]
    fn mentions_show_names() {
        assert_eq!(
            people().render("Hi <@42>, <@!43> and <@99>: <@&8> in <#100> <3"),
            "Hi @ada, @bob and <@99>: @Member in #general <3"
        );
    }

    #[test]
    fn components_say_how_to_use_them() {
        let rows = json!([{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "Wave", "custom_id": "hello:wave"},
            {"type": 3, "custom_id": "hello:pick", "options": [{"label": "A", "value": "a"}]}]}]);
        assert_eq!(
            component_lines(&rows),
            vec![
                "click hello:wave   (button \"Wave\")",
                "choose hello:pick <value>…   (menu: a)"
            ]
        );
        let rows = rows.as_array().unwrap();
        assert_eq!(custom_ids(rows), vec!["hello:wave", "hello:pick"]);
    }
}
