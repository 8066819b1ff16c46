//! `/8ball`, `/joke` and `/meme`: answers from [`crate::data`], as embeds
//! (an embed never pings, so echoing what a member typed is safe even when a
//! prefix command's answer is posted in the channel).

use crate::Config;
use crate::data::{CATEGORIES, EIGHT_BALL, JOKES, Joke, MEMES, Meme};
use crate::pick::{fresh_seed, hash, now, pick};
use townes_sdk::{CommandInvocation, Embed, Error, Reply, Snowflake};

/// Characters of the question the 8-ball repeats; the rest becomes `…`.
pub const QUESTION_ECHO: usize = 256;
/// The 8-ball gives one question the same answer for this long.
pub const ANSWER_SECONDS: u64 = 3600;

const EIGHT_BALL_COLOR: u32 = 0x2c2f33;
const JOKE_COLOR: u32 = 0xfee75c;
const MEME_COLOR: u32 = 0xeb459e;

/// `text` cut to `max` characters, the cut marked with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The question as the 8-ball hears it: case, spacing and trailing
/// punctuation do not change the answer.
fn normalise(question: &str) -> String {
    question
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(['?', '!', '.', ' '])
        .to_string()
}

/// The 8-ball's answer to `asker` for `question` during time bucket `bucket`
/// (hours since 1970): the same within the hour, whoever asks again how.
pub fn eight_ball_answer(question: &str, asker: Snowflake, bucket: u64) -> &'static str {
    let seed = hash(&[
        normalise(question).as_bytes(),
        &asker.to_le_bytes(),
        &bucket.to_le_bytes(),
    ]);
    pick(&EIGHT_BALL, seed).copied().unwrap_or(EIGHT_BALL[0])
}

/// `/8ball question`.
pub fn eight_ball(invocation: &CommandInvocation) -> Result<Reply, Error> {
    let question = invocation
        .text_arg("question")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "Ask the 8-ball a question, e.g. `/8ball question: Will it rain tomorrow?`",
            )
        })?;
    let answer = eight_ball_answer(question, invocation.invoker.user.id, now() / ANSWER_SECONDS);
    // One line: a newline would end the quote and let the question pose as
    // the answer.
    let echo = truncate(
        &question.split_whitespace().collect::<Vec<_>>().join(" "),
        QUESTION_ECHO,
    );
    Ok(Reply::embed(
        Embed::new()
            .title("🎱 The Magic 8-Ball")
            .description(format!("> {echo}\n\n**{answer}**"))
            .footer(format!(
                "Asked by {}",
                truncate(invocation.invoker.display_name(), 64)
            ))
            .color(EIGHT_BALL_COLOR),
    ))
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The categories the guild allows, in [`CATEGORIES`] order.
fn allowed_categories(config: &Config) -> Vec<&'static str> {
    CATEGORIES
        .into_iter()
        .filter(|c| config.joke_categories.iter().any(|a| a == c))
        .collect()
}

/// The jokes `/joke [category]` may tell in this guild, or why none.
pub fn joke_pool(category: Option<&str>, config: &Config) -> Result<Vec<Joke>, Error> {
    let allowed = allowed_categories(config);
    if allowed.is_empty() {
        return Err(Error::invalid("Jokes are turned off in this server."));
    }
    let wanted = match category.map(|c| c.trim().to_lowercase()) {
        None => allowed.clone(),
        Some(c) if c.is_empty() => allowed.clone(),
        Some(c) => {
            let Some(known) = CATEGORIES.into_iter().find(|k| *k == c) else {
                return Err(Error::invalid(format!(
                    "There is no joke category `{}`; pick one of {}.",
                    truncate(&c, 32),
                    list(&allowed)
                )));
            };
            if !allowed.contains(&known) {
                return Err(Error::invalid(format!(
                    "`{known}` jokes are turned off in this server; pick one of {}.",
                    list(&allowed)
                )));
            }
            vec![known]
        }
    };
    Ok(JOKES
        .iter()
        .filter(|j| wanted.contains(&j.category))
        .copied()
        .collect())
}

/// The embed of a joke; the punchline is a spoiler, revealed by a click.
pub fn joke_embed(joke: &Joke) -> Embed {
    Embed::new()
        .title(format!("😄 A {} joke", joke.category))
        .description(format!("{}\n\n||{}||", joke.setup, joke.punchline))
        .color(JOKE_COLOR)
}

/// `/joke [category]`.
pub fn joke(invocation: &CommandInvocation, config: &Config) -> Result<Reply, Error> {
    let pool = joke_pool(invocation.text_arg("category"), config)?;
    let seed = fresh_seed(invocation.invoker.user.id, invocation.channel_id);
    let joke = pick(&pool, seed).ok_or_else(|| Error::invalid("No jokes to tell."))?;
    Ok(Reply::embed(joke_embed(joke)))
}

/// The embed of meme number `index` (0-based): the scene in italics, the
/// captions in capitals, as the classic white-on-black lettering would be.
pub fn meme_embed(meme: &Meme, index: usize) -> Embed {
    Embed::new()
        .title(format!("🖼️ {}", meme.format))
        .description(format!(
            "*{}*\n\n**{}**\n\n**{}**",
            meme.scene,
            meme.top.to_uppercase(),
            meme.bottom.to_uppercase()
        ))
        .footer(format!(
            "Text meme {} of {}: no picture, so picture it.",
            index + 1,
            MEMES.len()
        ))
        .color(MEME_COLOR)
}

/// `/meme`.
pub fn meme(invocation: &CommandInvocation) -> Reply {
    let seed = fresh_seed(invocation.invoker.user.id, invocation.channel_id);
    let index = (seed % MEMES.len() as u64) as usize;
    Reply::embed(meme_embed(&MEMES[index], index))
}
