//! Reading what the person types: chat, `/commands` and the command words.

/// A word of a command line; `quoted` when (part of) it was in double quotes,
/// which makes a slash option's value a string whatever it looks like.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Word {
    pub(super) text: String,
    pub(super) quoted: bool,
}

/// One line of input.
#[derive(Debug, PartialEq)]
pub(super) enum Input {
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
pub(super) fn parse(line: &str) -> Result<Input, String> {
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
pub(super) const KEYWORDS: &[&str] = &[
    "say", "as", "join", "leave", "react", "click", "choose", "modal", "who", "help", "?", "quit",
    "exit",
];

/// The single argument of a command.
pub(super) fn one(args: &[Word], form: &str) -> Result<String, String> {
    match args {
        [word] => Ok(word.text.clone()),
        _ => Err(usage(form)),
    }
}

pub(super) fn usage(form: &str) -> String {
    format!("usage: {form} (to say this in #general instead, start the line with `say`)")
}

/// `key=value`.
pub(super) fn pair(word: &Word) -> Result<(String, String), String> {
    match word.text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!(
            "expected name=value, not {:?}; quote values with spaces: text=\"hello there\"",
            word.text
        )),
    }
}

/// Splits at whitespace outside double quotes; the quotes themselves go.
pub(super) fn words(input: &str) -> Result<Vec<Word>, String> {
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
