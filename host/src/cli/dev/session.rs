//! The person at the keyboard: acting as a user of the playground guild.

use super::*;

/// The person at the keyboard: who they act as, and how they act.
pub(super) struct Dev {
    sim: Simulator,
    guild: u64,
    general: u64,
    owner: u64,
    me: u64,
    narrator: Arc<Mutex<Narrator>>,
    /// A terminal gets a prompt; piped input is echoed after one instead, so
    /// the output reads as a transcript.
    pub(super) interactive: bool,
}

impl Dev {
    pub(super) fn new(playground: &Playground, narrator: Arc<Mutex<Narrator>>) -> Dev {
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
    pub(super) async fn session(
        &mut self,
        mut lines: mpsc::Receiver<String>,
    ) -> anyhow::Result<()> {
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
