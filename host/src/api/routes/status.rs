//! Public pages for anyone (seed 001, EPIC 3): the platform's status, per
//! component, and its changelog. No session, no tenant data, no secret: a
//! component says whether it works, never where it is or what it holds.

use crate::api::ApiState;
use crate::api::examples;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// The repository's changelog, as built into this binary.
const CHANGELOG: &str = include_str!("../../../../CHANGELOG.md");

/// One part of the platform.
#[derive(Serialize, ToSchema)]
pub struct Component {
    /// `database`, `gateway`, `queue` or `live events`.
    #[schema(example = "database")]
    pub name: &'static str,
    /// `ok`, `degraded` (works, partly), `down`, or `elsewhere` (not run by
    /// this process).
    #[schema(example = "ok")]
    pub status: &'static str,
    /// A few words for people, without addresses or secrets.
    pub detail: Option<String>,
}

/// The platform's status.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::status)]
pub struct Status {
    /// `ok` when every component is `ok` or `elsewhere`, `down` when the
    /// database is, else `degraded`.
    #[schema(example = "ok")]
    pub status: &'static str,
    pub version: &'static str,
    pub components: Vec<Component>,
}

/// The platform's status, per component. Always 200: the body says how it is.
#[utoipa::path(get, path = "/status", tag = "status", operation_id = "getStatus",
    responses((status = 200, description = "The status", body = Status)))]
pub async fn status(State(state): State<ApiState>) -> axum::Json<Status> {
    let mut components = Vec::new();
    let database = match state.store().ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "status: database");
            "down"
        }
    };
    components.push(Component {
        name: "database",
        status: database,
        detail: None,
    });
    match state.platform() {
        Some(platform) => {
            let gateway = match platform.shards_connected().await {
                Some((connected, total)) if connected == total && total > 0 => Component {
                    name: "gateway",
                    status: "ok",
                    detail: Some(format!("{connected} of {total} shards connected")),
                },
                Some((connected, total)) => Component {
                    name: "gateway",
                    status: "degraded",
                    detail: Some(format!("{connected} of {total} shards connected")),
                },
                None => Component {
                    name: "gateway",
                    status: "degraded",
                    detail: Some("starting".into()),
                },
            };
            components.push(gateway);
            components.push(Component {
                name: "queue",
                status: "ok",
                detail: Some(format!(
                    "{} Discord calls waiting",
                    platform.executor.queue_depth()
                )),
            });
        }
        None => {
            for name in ["gateway", "queue"] {
                components.push(Component {
                    name,
                    status: "elsewhere",
                    detail: None,
                });
            }
        }
    }
    if state.live().uses_redis() {
        let live = match state.live().ping().await {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "status: redis");
                "degraded"
            }
        };
        components.push(Component {
            name: "live events",
            status: live,
            detail: None,
        });
    }
    let overall = if database == "down" {
        "down"
    } else if components
        .iter()
        .all(|c| matches!(c.status, "ok" | "elsewhere"))
    {
        "ok"
    } else {
        "degraded"
    };
    axum::Json(Status {
        status: overall,
        version: env!("CARGO_PKG_VERSION"),
        components,
    })
}

/// A release of the changelog.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct Release {
    /// `1.2.0`, or `Unreleased` for what is merged and not yet released.
    #[schema(example = "Unreleased")]
    pub version: String,
    /// `YYYY-MM-DD`; absent for `Unreleased`.
    pub date: Option<String>,
    /// Its sections (`Added`, `Changed`, `Fixed`, …), in the file's order.
    pub sections: Vec<Section>,
}

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct Section {
    #[schema(example = "Added")]
    pub kind: String,
    /// One entry per bullet, as Markdown, its lines joined.
    pub entries: Vec<String>,
}

/// The changelog, newest release first.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::changelog)]
pub struct Changelog {
    pub releases: Vec<Release>,
}

/// The platform's changelog as releases (from `CHANGELOG.md`, Keep a
/// Changelog format); `GET /changelog.md` serves the file itself.
#[utoipa::path(get, path = "/changelog", tag = "status", operation_id = "getChangelog",
    responses((status = 200, description = "Releases, newest first", body = Changelog)))]
pub async fn changelog() -> axum::Json<Changelog> {
    axum::Json(Changelog {
        releases: releases(CHANGELOG),
    })
}

/// The changelog as Markdown.
#[utoipa::path(get, path = "/changelog.md", tag = "status", operation_id = "getChangelogMarkdown",
    responses((status = 200, description = "CHANGELOG.md", body = String, content_type = "text/markdown",
        example = examples::changelog_markdown)))]
pub async fn changelog_markdown() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        CHANGELOG,
    )
}

/// Reads `## [version] - date` releases, their `### Kind` sections and their
/// `- ` bullets (continuation lines joined to their bullet).
fn releases(text: &str) -> Vec<Release> {
    let mut releases: Vec<Release> = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            let (version, date) = match heading.split_once(" - ") {
                Some((version, date)) => (version, Some(date.trim().to_string())),
                None => (heading, None),
            };
            releases.push(Release {
                version: version.trim().trim_matches(['[', ']']).to_string(),
                date,
                sections: Vec::new(),
            });
            continue;
        }
        let Some(release) = releases.last_mut() else {
            continue;
        };
        if let Some(kind) = line.strip_prefix("### ") {
            release.sections.push(Section {
                kind: kind.trim().to_string(),
                entries: Vec::new(),
            });
            continue;
        }
        let Some(section) = release.sections.last_mut() else {
            continue;
        };
        if let Some(entry) = line.strip_prefix("- ") {
            section.entries.push(entry.trim().to_string());
        } else if line.starts_with(' ')
            && !line.trim().is_empty()
            && let Some(entry) = section.entries.last_mut()
        {
            entry.push(' ');
            entry.push_str(line.trim());
        }
    }
    releases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_sections_and_wrapped_entries_are_read() {
        let text = "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n### Added\n- one\n  continued\n- two\n\n## [0.1.0] - 2026-01-02\n\n### Fixed\n- three\n";
        assert_eq!(
            releases(text),
            vec![
                Release {
                    version: "Unreleased".into(),
                    date: None,
                    sections: vec![Section {
                        kind: "Added".into(),
                        entries: vec!["one continued".into(), "two".into()],
                    }],
                },
                Release {
                    version: "0.1.0".into(),
                    date: Some("2026-01-02".into()),
                    sections: vec![Section {
                        kind: "Fixed".into(),
                        entries: vec!["three".into()],
                    }],
                },
            ]
        );
    }

    #[test]
    fn the_built_in_changelog_opens_with_unreleased_then_dated_releases() {
        let releases = releases(CHANGELOG);
        assert_eq!(releases[0].version, "Unreleased");
        assert!(releases.len() > 1, "no release cut yet");
        for release in &releases[1..] {
            assert!(release.date.is_some(), "{} has no date", release.version);
            assert!(!release.sections.is_empty(), "{} is empty", release.version);
        }
    }
}
