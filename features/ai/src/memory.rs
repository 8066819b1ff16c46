//! The last few exchanges of each channel, so a follow-up question makes
//! sense: bounded in count (config) and bytes.

use serde::{Deserialize, Serialize};
use townes_sdk::{Error, Snowflake, storage};

/// The most bytes of one channel's memory.
pub const MAX_MEMORY_BYTES: usize = 6_000;
/// The most characters of one remembered question or answer.
const MAX_ENTRY_CHARS: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub question: String,
    pub answer: String,
}

fn key(channel_id: Snowflake) -> String {
    format!("memory/{channel_id}")
}

pub fn load(channel_id: Snowflake) -> Result<Vec<Exchange>, Error> {
    Ok(storage::get_json(&key(channel_id))?.unwrap_or_default())
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_ENTRY_CHARS).collect()
}

/// Adds an exchange and keeps the last `keep` that fit in [`MAX_MEMORY_BYTES`].
pub fn remember(
    channel_id: Snowflake,
    keep: u32,
    question: &str,
    answer: &str,
) -> Result<(), Error> {
    if keep == 0 {
        return Ok(());
    }
    let mut exchanges = load(channel_id)?;
    exchanges.push(Exchange {
        question: cut(question),
        answer: cut(answer),
    });
    let excess = exchanges.len().saturating_sub(keep as usize);
    exchanges.drain(..excess);
    while exchanges.len() > 1
        && exchanges
            .iter()
            .map(|e| e.question.len() + e.answer.len())
            .sum::<usize>()
            > MAX_MEMORY_BYTES
    {
        exchanges.remove(0);
    }
    storage::set_json(&key(channel_id), &exchanges)
}
