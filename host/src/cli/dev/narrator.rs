//! Telling what the bot asked Discord to do, one line each.

use super::*;

/// An interaction the person started.
pub(super) struct Asked {
    user: u64,
    /// A component's: an update or deferred update edits the message it sits on.
    on_message: bool,
    /// How the bot answered so far: later edits of the answer inherit these.
    ephemeral: bool,
    updates_message: bool,
}

/// Tells, one line each, what the bot asked Discord to do.
pub(super) struct Narrator {
    sim: Simulator,
    pub(super) people: Directory,
    asked: HashMap<u64, Asked>,
    /// Interaction tokens (which webhook paths carry) → interaction ids.
    tokens: HashMap<String, u64>,
    /// DM channels → their user, learnt as DMs are told.
    dms: HashMap<u64, u64>,
    /// How many of the simulator's recorded requests have been told.
    pub(super) told: usize,
    /// Since when the next request to tell has been in flight.
    waiting: Option<(usize, Instant)>,
}

impl Narrator {
    pub(super) fn new(playground: &Playground) -> Narrator {
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

    pub(super) fn asked(&mut self, interaction: &Interaction, user: u64, on_message: bool) {
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
    pub(super) fn catch_up(&mut self) -> bool {
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
pub(super) fn registered(body: &Value) -> String {
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
pub(super) fn components(value: &Value) -> impl Iterator<Item = &Value> {
    unrow(value.as_array().map_or(&[][..], Vec::as_slice))
}

/// Action rows replaced by what they hold.
pub(super) fn unrow(items: &[Value]) -> impl Iterator<Item = &Value> {
    items.iter().flat_map(|c| match c["components"].as_array() {
        Some(children) if c["type"] == 1 => children.iter().collect::<Vec<_>>(),
        _ => vec![c],
    })
}

/// The custom ids of a message's buttons and menus.
pub(super) fn custom_ids(rows: &[Value]) -> Vec<&str> {
    unrow(rows)
        .filter_map(|c| c["custom_id"].as_str())
        .collect()
}

/// How to use each of a message's components from here.
pub(super) fn component_lines(value: &Value) -> Vec<String> {
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
