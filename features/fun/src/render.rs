//! What a poll looks like: its message (open and ended), its results message
//! and the sentences voters read.

use crate::store::{Poll, Tally};
use townes_sdk::{ActionRow, Button, Embed, MessageBody, SelectMenu, Snowflake};

/// Polls with up to this many options get one button per option; more get
/// a select menu (a row holds five buttons, and the End poll button needs a
/// row of its own).
pub const MAX_BUTTONS: usize = 5;
/// Characters of a result bar.
const BAR: usize = 10;

const OPEN_COLOR: u32 = 0x5865f2;
const ENDED_COLOR: u32 = 0x99aab5;
const RESULTS_COLOR: u32 = 0x57f287;

/// The keycap emoji of option `index` (0-based).
pub fn keycap(index: usize) -> &'static str {
    const KEYCAPS: [&str; 10] = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟"];
    KEYCAPS.get(index).copied().unwrap_or("▫️")
}

/// `count` out of `of` as a bar of [`BAR`] blocks.
pub fn bar(count: u64, of: u64) -> String {
    let filled = ((count * BAR as u64).checked_div(of).unwrap_or(0) as usize).min(BAR);
    format!("{}{}", "█".repeat(filled), "░".repeat(BAR - filled))
}

fn votes(n: u64) -> String {
    format!("{n} vote{}", if n == 1 { "" } else { "s" })
}

fn voters(n: u64) -> String {
    format!("{n} voter{}", if n == 1 { "" } else { "s" })
}

/// `**A**`, `**A** and **B**`, `**A**, **B** and **C**`.
pub fn names(poll: &Poll, indexes: &[usize]) -> String {
    let names: Vec<String> = indexes
        .iter()
        .filter_map(|&i| poll.options.get(i))
        .map(|o| format!("**{o}**"))
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// One line per option: its number, its text, a bar, its share and count.
fn standings(poll: &Poll, tally: &Tally) -> String {
    poll.options
        .iter()
        .enumerate()
        .map(|(i, option)| {
            let count = tally.counts.get(i).copied().unwrap_or(0);
            format!(
                "{} **{option}**\n`{}` {}% · {}",
                keycap(i),
                bar(count, tally.voters),
                tally.percent(i),
                votes(count)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sentence that names the winner(s).
pub fn verdict(poll: &Poll, tally: &Tally) -> String {
    let winners = tally.winners();
    let best = winners.first().map_or(0, |&i| tally.counts[i]);
    match winners.len() {
        0 => "No votes were cast.".to_string(),
        1 => format!(
            "🏆 {} wins with {} ({}% of {}).",
            names(poll, &winners),
            votes(best),
            tally.percent(winners[0]),
            voters(tally.voters)
        ),
        _ => format!(
            "🤝 A tie between {}, with {} each.",
            names(poll, &winners),
            votes(best)
        ),
    }
}

fn footer(poll: &Poll, tally: &Tally) -> String {
    let how = if poll.multi {
        "choose any number"
    } else {
        "one choice each"
    };
    format!("Poll #{} · {how} · {}", poll.number, voters(tally.voters))
}

/// The poll's message: open, with its buttons or menu and an End poll
/// button; or ended, with the final counts, the winner(s) and no components
/// (nothing left to click).
pub fn poll_message(poll: &Poll, tally: &Tally) -> MessageBody {
    let mut embed = Embed::new()
        .title(format!("📊 {}", poll.question))
        .description(standings(poll, tally))
        .footer(footer(poll, tally));
    if poll.closed {
        let ended = match poll.closed_by {
            Some(by) => format!(
                "<t:{}:f>, ended early by <@{by}>",
                poll.closed_at.unwrap_or(poll.ends_at)
            ),
            None => format!("<t:{}:f>", poll.closed_at.unwrap_or(poll.ends_at)),
        };
        embed = embed
            .field("Result", verdict(poll, tally), false)
            .field("Ended", ended, false)
            .color(ENDED_COLOR);
        return MessageBody::embed(embed);
    }
    embed = embed
        .field(
            "Ends",
            format!("<t:{0}:R> (<t:{0}:f>)", poll.ends_at),
            false,
        )
        .color(OPEN_COLOR);
    let choices = if poll.options.len() <= MAX_BUTTONS {
        poll.options
            .iter()
            .enumerate()
            .fold(ActionRow::new(), |row, (i, option)| {
                row.button(
                    Button::secondary(format!("vote:{}:{i}", poll.number), option.as_str())
                        .emoji(keycap(i)),
                )
            })
    } else {
        let n = poll.options.len() as u8;
        let menu = poll.options.iter().enumerate().fold(
            SelectMenu::new(format!("vote:{}", poll.number)),
            |menu, (i, option)| menu.option(option.as_str(), i.to_string()),
        );
        let menu = if poll.multi {
            menu.placeholder("Choose one or more options").range(1, n)
        } else {
            menu.placeholder("Choose an option")
        };
        ActionRow::new().select(menu)
    };
    MessageBody::embed(embed).with_row(choices).with_row(
        ActionRow::new().button(Button::danger(format!("end:{}", poll.number), "End poll")),
    )
}

/// A link that jumps to a message.
pub fn message_link(guild_id: Snowflake, channel_id: Snowflake, message_id: Snowflake) -> String {
    format!("https://discord.com/channels/{guild_id}/{channel_id}/{message_id}")
}

/// The results, posted in the poll's channel when it ends: the verdict, the
/// full standings best first, and a link back to the poll.
pub fn results_message(guild_id: Snowflake, poll: &Poll, tally: &Tally) -> MessageBody {
    let mut order: Vec<usize> = (0..poll.options.len()).collect();
    // Best first; equal counts keep the poll's order.
    order.sort_by_key(|&i| std::cmp::Reverse(tally.counts.get(i).copied().unwrap_or(0)));
    let table = order
        .iter()
        .map(|&i| {
            format!(
                "{} {} — {}",
                keycap(i),
                poll.options[i],
                votes(tally.counts.get(i).copied().unwrap_or(0))
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut description = format!("**{}**\n\n{}", poll.question, verdict(poll, tally));
    if let Some(message_id) = poll.message_id {
        description.push_str(&format!(
            "\n\n[Jump to the poll]({})",
            message_link(guild_id, poll.channel_id, message_id)
        ));
    }
    MessageBody::embed(
        Embed::new()
            .title(format!("🏁 Poll #{} has ended", poll.number))
            .description(description)
            .field("Final counts", table, false)
            .footer(footer(poll, tally))
            .color(RESULTS_COLOR),
    )
}

/// What a voter is told after their click (only they see it).
pub fn vote_answer(poll: &Poll, before: &[usize], after: &[usize]) -> String {
    if after.is_empty() {
        return "You took back your vote.".to_string();
    }
    if before == after {
        return format!("You already voted for {}.", names(poll, after));
    }
    let mut answer = format!("You voted for {}.", names(poll, after));
    if !poll.multi && !before.is_empty() {
        answer = format!(
            "You voted for {} (instead of {}).",
            names(poll, after),
            names(poll, before)
        );
    }
    if poll.multi && poll.options.len() <= MAX_BUTTONS {
        answer.push_str(" Click an option again to take it back.");
    }
    answer
}
