//! Prefix commands (`!rank @ada`): recognising them in a message and reading their
//! arguments by the command's declared options, as Discord would for a slash
//! command.

use crate::wit::{Command, CommandArgument, CommandOption, OptionKind, OptionValue};

/// The command name and the rest of the text, when `content` starts with `prefix`.
pub fn split<'a>(prefix: &str, content: &'a str) -> Option<(String, &'a str)> {
    let rest = content.strip_prefix(prefix)?;
    let name = rest.split_whitespace().next()?;
    let after = rest.trim_start()[name.len()..].trim_start();
    Some((name.to_lowercase(), after))
}

/// The subcommand and arguments in `text`, or a usage message.
pub fn arguments(
    prefix: &str,
    command: &Command,
    text: &str,
) -> Result<(Option<String>, Vec<CommandArgument>), String> {
    let mut words = words(text);
    if command.subcommands.is_empty() {
        let arguments = read_options(&command.options, &mut words).map_err(|e| {
            format!(
                "{e}\nUsage: {}",
                usage(prefix, &command.name, None, &command.options)
            )
        })?;
        return Ok((None, arguments));
    }
    let names = || {
        command
            .subcommands
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(first) = words.first().cloned() else {
        return Err(format!("`{}` needs one of: {}.", command.name, names()));
    };
    let Some(sub) = command.subcommands.iter().find(|s| s.name == first) else {
        return Err(format!(
            "`{first}` is not a subcommand of `{}`; use one of: {}.",
            command.name,
            names()
        ));
    };
    words.remove(0);
    let arguments = read_options(&sub.options, &mut words).map_err(|e| {
        format!(
            "{e}\nUsage: {}",
            usage(prefix, &command.name, Some(&sub.name), &sub.options)
        )
    })?;
    Ok((Some(sub.name.clone()), arguments))
}

/// Whitespace-separated words; "double quotes" keep spaces together.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn read_options(
    options: &[CommandOption],
    words: &mut Vec<String>,
) -> Result<Vec<CommandArgument>, String> {
    let mut arguments = Vec::new();
    for (i, option) in options.iter().enumerate() {
        if words.is_empty() {
            if option.required {
                return Err(format!("`{}` is required.", option.name));
            }
            continue;
        }
        let last = i + 1 == options.len();
        let word = if last && option.kind == OptionKind::Text {
            std::mem::take(words).join(" ")
        } else {
            words.remove(0)
        };
        arguments.push(CommandArgument {
            name: option.name.clone(),
            value: value(option, &word)?,
        });
    }
    if !words.is_empty() {
        return Err(format!("unexpected `{}`.", words.join(" ")));
    }
    Ok(arguments)
}

fn value(option: &CommandOption, word: &str) -> Result<OptionValue, String> {
    let bad = |what: &str| format!("`{}` must be {what}, not `{word}`.", option.name);
    Ok(match option.kind {
        OptionKind::Text => {
            if !option.choices.is_empty() && !option.choices.iter().any(|c| c == word) {
                return Err(format!(
                    "`{}` must be one of: {}.",
                    option.name,
                    option.choices.join(", ")
                ));
            }
            OptionValue::Text(word.to_string())
        }
        OptionKind::Integer => {
            OptionValue::Integer(word.parse().map_err(|_| bad("a whole number"))?)
        }
        OptionKind::Number => OptionValue::Number(word.parse().map_err(|_| bad("a number"))?),
        OptionKind::Boolean => OptionValue::Boolean(match word.to_lowercase().as_str() {
            "true" | "yes" | "on" => true,
            "false" | "no" | "off" => false,
            _ => return Err(bad("yes or no")),
        }),
        OptionKind::User => OptionValue::User(
            mention(word, &["<@!", "<@"]).ok_or_else(|| bad("a member (@mention or id)"))?,
        ),
        OptionKind::Channel => OptionValue::Channel(
            mention(word, &["<#"]).ok_or_else(|| bad("a channel (#mention or id)"))?,
        ),
        OptionKind::Role => OptionValue::Role(
            mention(word, &["<@&"]).ok_or_else(|| bad("a role (@mention or id)"))?,
        ),
    })
}

/// The id in `<@123>`-style mentions (trying `openers` in order) or a bare id.
fn mention(word: &str, openers: &[&str]) -> Option<u64> {
    let inner = openers
        .iter()
        .find_map(|o| word.strip_prefix(o).and_then(|w| w.strip_suffix('>')))
        .unwrap_or(word);
    inner.parse().ok()
}

fn usage(prefix: &str, name: &str, sub: Option<&str>, options: &[CommandOption]) -> String {
    let mut line = format!("{prefix}{name}");
    if let Some(sub) = sub {
        line.push(' ');
        line.push_str(sub);
    }
    for o in options {
        let (open, close) = if o.required { ('<', '>') } else { ('[', ']') };
        line.push_str(&format!(" {open}{}{close}", o.name));
    }
    format!("`{line}`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::Subcommand;

    fn option(name: &str, kind: OptionKind, required: bool) -> CommandOption {
        CommandOption {
            name: name.into(),
            description: String::new(),
            kind,
            required,
            choices: vec![],
        }
    }

    fn command(options: Vec<CommandOption>, subcommands: Vec<Subcommand>) -> Command {
        Command {
            name: "give".into(),
            description: String::new(),
            options,
            subcommands,
            slash: true,
            prefix: true,
            default_permissions: None,
        }
    }

    #[test]
    fn splits_name_and_rest() {
        assert_eq!(
            split("!", "!Rank  <@42> now"),
            Some(("rank".to_string(), "<@42> now"))
        );
        assert_eq!(split("!", "rank"), None);
        assert_eq!(split("!", "! rank"), Some(("rank".to_string(), "")));
        assert_eq!(split("!", "!"), None);
    }

    #[test]
    fn reads_options_in_order_and_the_last_text_takes_the_rest() {
        let cmd = command(
            vec![
                option("user", OptionKind::User, true),
                option("amount", OptionKind::Integer, true),
                option("why", OptionKind::Text, false),
            ],
            vec![],
        );
        let (sub, args) = arguments("!", &cmd, "<@!42> 5 for \"being kind\"").unwrap();
        assert_eq!(sub, None);
        assert_eq!(args[0].value, OptionValue::User(42));
        assert_eq!(args[1].value, OptionValue::Integer(5));
        assert_eq!(args[2].value, OptionValue::Text("for being kind".into()));
    }

    #[test]
    fn explains_bad_input_with_usage() {
        let cmd = command(
            vec![
                option("user", OptionKind::User, true),
                option("amount", OptionKind::Integer, false),
            ],
            vec![],
        );
        let err = arguments("!", &cmd, "").unwrap_err();
        assert_eq!(err, "`user` is required.\nUsage: `!give <user> [amount]`");
        let err = arguments("!", &cmd, "<@42> lots").unwrap_err();
        assert!(
            err.starts_with("`amount` must be a whole number, not `lots`."),
            "{err}"
        );
        let err = arguments("!", &cmd, "<@42> 1 2").unwrap_err();
        assert!(err.starts_with("unexpected `2`."), "{err}");
    }

    #[test]
    fn subcommands_come_first() {
        let cmd = command(
            vec![],
            vec![Subcommand {
                name: "add".into(),
                description: String::new(),
                options: vec![option("role", OptionKind::Role, true)],
            }],
        );
        let (sub, args) = arguments("?", &cmd, "add <@&7>").unwrap();
        assert_eq!(sub.as_deref(), Some("add"));
        assert_eq!(args[0].value, OptionValue::Role(7));
        assert!(
            arguments("?", &cmd, "remove 1")
                .unwrap_err()
                .contains("use one of: add")
        );
    }
}
