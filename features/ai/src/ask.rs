//! `/ask` and mentions: the member's daily limit, the prompt, the call, and
//! a friendly word for every way it can fail.

use crate::config::Config;
use crate::{knowledge, memory, prompt};
use serde::{Deserialize, Serialize};
use townes_sdk::ai::{self, AiError, ChatMessage, ChatRequest};
use townes_sdk::{
    CommandInvocation, Context, Error, Message, MessageBody, Reply, Snowflake, messages, storage,
    time,
};

/// The longest question taken.
pub const MAX_QUESTION_CHARS: usize = 2_000;
/// Discord's limit on a message's text.
const MAX_REPLY_CHARS: usize = 2_000;

#[derive(Default, Serialize, Deserialize)]
struct Asked {
    /// Days since the Unix epoch (UTC).
    day: u64,
    count: u32,
}

fn today() -> u64 {
    time::now() / 86_400
}

fn asked_key(member: Snowflake) -> String {
    format!("asked/{member}")
}

fn asked_today(member: Snowflake) -> Result<u32, Error> {
    let asked: Asked = storage::get_json(&asked_key(member))?.unwrap_or_default();
    Ok(if asked.day == today() { asked.count } else { 0 })
}

fn count_question(member: Snowflake, before: u32) -> Result<(), Error> {
    storage::set_json(
        &asked_key(member),
        &Asked {
            day: today(),
            count: before + 1,
        },
    )
}

/// Mass mentions and user pings defused: a model can be talked into writing them.
pub fn defuse(text: &str) -> String {
    text.replace("@everyone", "@\u{200b}everyone")
        .replace("@here", "@\u{200b}here")
        .replace("<@", "<@\u{200b}")
}

fn until_midnight() -> String {
    let left = 86_400 - time::now() % 86_400;
    format!("{} h {} min", left / 3600, left % 3600 / 60)
}

/// The answer to `question` from `member` in `channel_id`, or the words that
/// tell them why there is none.
pub fn answer(member: Snowflake, channel_id: Snowflake, question: &str) -> Result<String, Error> {
    let question = question.trim();
    if question.is_empty() {
        return Ok("Ask me something: `/ask question:<your question>`.".into());
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Ok(format!(
            "That question is too long for me: keep it under {MAX_QUESTION_CHARS} characters."
        ));
    }
    let config = Config::load()?;
    let asked = asked_today(member)?;
    if asked >= config.questions_per_member_per_day {
        return Ok(format!(
            "You've asked {asked} questions today, the most this server allows per member. \
             You can ask again after midnight UTC (in {}).",
            until_midnight()
        ));
    }
    let articles = knowledge::all()?;
    let history = memory::load(channel_id)?;
    let mut messages = vec![ChatMessage::system(prompt::system(&config, &articles))];
    let keep = history
        .len()
        .saturating_sub(config.memory_exchanges as usize);
    for exchange in &history[keep..] {
        messages.push(ChatMessage::user(exchange.question.clone()));
        messages.push(ChatMessage::assistant(exchange.answer.clone()));
    }
    messages.push(ChatMessage::user(question.to_string()));
    let request = ChatRequest::new(messages)
        .max_tokens(config.answer_length.max_tokens())
        .for_member(member);
    match ai::chat(&request) {
        Ok(answer) => {
            count_question(member, asked)?;
            let mut text = answer.content.trim().to_string();
            if text.is_empty() {
                text = "I don't have an answer to that.".into();
            }
            memory::remember(channel_id, config.memory_exchanges, question, &text)?;
            let mut text = defuse(&text);
            if answer.truncated {
                text.push('…');
            }
            if text.chars().count() > MAX_REPLY_CHARS {
                text = text.chars().take(MAX_REPLY_CHARS - 1).collect::<String>() + "…";
            }
            Ok(text)
        }
        Err(AiError::Denied) => Ok(
            "The AI concierge isn't switched on here yet: a server admin can approve its AI access on the dashboard."
                .into(),
        ),
        Err(AiError::QuotaExceeded(why)) => Ok(format!("Sorry, I can't answer right now: {why}.")),
        Err(AiError::InvalidArgument(_)) => Ok(
            "I couldn't send that question to the model; try a shorter one.".into(),
        ),
        Err(AiError::Unavailable(_)) => Ok(
            "The AI model isn't answering right now; please try again in a little while.".into(),
        ),
    }
}

pub fn command(invocation: &CommandInvocation) -> Result<Reply, Error> {
    let question = invocation.text_arg("question").unwrap_or("");
    let text = answer(invocation.invoker.user.id, invocation.channel_id, question)?;
    Ok(Reply::text(text))
}

/// A message that mentions the bot: answered in its channel.
pub fn mention(ctx: &Context, message: &Message) -> Result<(), Error> {
    if message.author.bot || !message.mentions.contains(&ctx.bot_user_id) {
        return Ok(());
    }
    let config = Config::load()?;
    if !config.answer_mentions {
        return Ok(());
    }
    let bot = ctx.bot_user_id;
    let question = message
        .content
        .replace(&format!("<@{bot}>"), "")
        .replace(&format!("<@!{bot}>"), "");
    let text = if message.content.is_empty() {
        // Without `message-content` the host hands us no text.
        "I can't read messages here (the server hasn't approved message content for me); use `/ask` instead."
            .to_string()
    } else {
        answer(message.author.id, message.channel_id, &question)?
    };
    match messages::send(message.channel_id, MessageBody::text(text)) {
        Ok(_) | Err(Error::Denied(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
