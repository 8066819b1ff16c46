//! Custom ids of buttons, select menus and modals are namespaced per feature, so
//! an interaction is routed to the feature that made the component and a feature
//! can never receive (or forge) another feature's clicks.
//!
//! On Discord a custom id is `<feature-id>:<the feature's own id>`. Feature ids
//! are lower-case letters, digits and `-` (checked at install), so the first `:`
//! always ends the namespace.

use crate::wit::{ActionRow, MessageBody, Modal, UiComponent};

/// Discord's limit on a custom id.
pub const MAX_LEN: usize = 100;

/// The id Discord carries for `feature_id`'s `own` id.
pub fn namespaced(feature_id: &str, own: &str) -> Result<String, String> {
    let id = format!("{feature_id}:{own}");
    if id.len() > MAX_LEN {
        return Err(format!(
            "custom id `{own}` is too long: feature `{feature_id}` may use at most {} characters",
            MAX_LEN - feature_id.len() - 1
        ));
    }
    Ok(id)
}

/// Splits a custom id from Discord into (feature id, the feature's own id).
pub fn split(id: &str) -> Option<(&str, &str)> {
    id.split_once(':')
        .filter(|(feature, _)| !feature.is_empty())
}

/// `body` with every component's custom id namespaced for `feature_id`.
pub fn namespace_body(feature_id: &str, body: &MessageBody) -> Result<MessageBody, String> {
    let mut body = body.clone();
    for row in &mut body.components {
        namespace_row(feature_id, row)?;
    }
    Ok(body)
}

fn namespace_row(feature_id: &str, row: &mut ActionRow) -> Result<(), String> {
    for component in &mut row.components {
        match component {
            UiComponent::Button(button) => {
                if let Some(id) = &button.custom_id {
                    button.custom_id = Some(namespaced(feature_id, id)?);
                }
            }
            UiComponent::SelectMenu(menu) => {
                menu.custom_id = namespaced(feature_id, &menu.custom_id)?;
            }
        }
    }
    Ok(())
}

/// `modal` with its own custom id namespaced (text inputs keep theirs: Discord
/// returns them inside the submit, which is already routed).
pub fn namespace_modal(feature_id: &str, modal: &Modal) -> Result<Modal, String> {
    let mut modal = modal.clone();
    modal.custom_id = namespaced(feature_id, &modal.custom_id)?;
    Ok(modal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = namespaced("xp", "page:2").unwrap();
        assert_eq!(id, "xp:page:2");
        assert_eq!(split(&id), Some(("xp", "page:2")));
    }

    #[test]
    fn ids_without_a_namespace_route_nowhere() {
        assert_eq!(split("plain"), None);
        assert_eq!(split(":x"), None);
    }

    #[test]
    fn too_long_ids_are_refused_with_the_limit() {
        let err = namespaced("welcome", &"a".repeat(93)).unwrap_err();
        assert!(err.contains("at most 92 characters"), "{err}");
        assert!(namespaced("welcome", &"a".repeat(92)).is_ok());
    }
}
