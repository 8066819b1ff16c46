//! `{placeholder}` templates for messages that admins configure.

use crate::limits;

/// Renders `template` in one pass, asking `value` for each `{name}`: values are
/// never themselves expanded (a user named `{server.name}` stays that), and
/// unknown placeholders (`value` returns `None`) and unmatched braces are kept as
/// they are. The result is cut to Discord's content limit, ending in `…`.
///
/// ```
/// let out = townes_sdk::template::render("Hi {user}, {nope}!", |name| (name == "user").then(|| "ann".to_string()));
/// assert_eq!(out, "Hi ann, {nope}!");
/// ```
pub fn render(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((value(&after[..close])?, close)))
        {
            Some((text, close)) => {
                out.push_str(&text);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    truncate(out, limits::CONTENT)
}

/// Cuts `text` to at most `max` characters, ending in `…` when it was longer.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.chars().count() > max {
        let cut = text
            .char_indices()
            .nth(max.saturating_sub(1))
            .map_or(text.len(), |(i, _)| i);
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_not_expanded_again_and_unknowns_stay() {
        let out = render("{a} {b} {a", |name| match name {
            "a" => Some("{b}".into()),
            _ => None,
        });
        assert_eq!(out, "{b} {b} {a");
    }

    #[test]
    fn long_output_is_cut_to_the_content_limit() {
        let out = render(&"x".repeat(limits::CONTENT + 10), |_| None);
        assert_eq!(out.chars().count(), limits::CONTENT);
        assert!(out.ends_with('…'));
    }
}
