//! The tone profile and the limits, as the admins set them.

use serde::{Deserialize, Serialize};
use townes_sdk::{Error, config, json, serde_json::Value};

/// How long answers are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerLength {
    Short,
    #[default]
    Medium,
    Long,
}

impl AnswerLength {
    /// The answer's token budget.
    pub fn max_tokens(self) -> u32 {
        match self {
            AnswerLength::Short => 150,
            AnswerLength::Medium => 350,
            AnswerLength::Long => 700,
        }
    }

    /// What the model is told.
    pub fn instruction(self) -> &'static str {
        match self {
            AnswerLength::Short => "Answer in one to three sentences.",
            AnswerLength::Medium => "Answer in a short paragraph.",
            AnswerLength::Long => "Answer thoroughly, in a few paragraphs at most.",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Who the concierge is.
    pub persona: String,
    /// How it speaks.
    pub tone: String,
    /// The language it answers in.
    pub language: String,
    /// Topics it declines.
    pub avoid_topics: Vec<String>,
    pub answer_length: AnswerLength,
    /// Questions one member may ask per UTC day.
    pub questions_per_member_per_day: u32,
    /// Whether messages mentioning the bot are answered (besides `/ask`).
    pub answer_mentions: bool,
    /// Exchanges remembered per channel (0: none).
    pub memory_exchanges: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            persona: "the server's friendly concierge".into(),
            tone: "warm, helpful and concise".into(),
            language: "the language of the question".into(),
            avoid_topics: Vec::new(),
            answer_length: AnswerLength::Medium,
            questions_per_member_per_day: 20,
            answer_mentions: true,
            memory_exchanges: 3,
        }
    }
}

pub const MAX_PERSONA: usize = 500;
pub const MAX_TONE: usize = 200;
pub const MAX_LANGUAGE: usize = 60;
pub const MAX_TOPICS: usize = 20;
pub const MAX_TOPIC: usize = 100;
pub const MAX_MEMORY: u32 = 10;

pub fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "persona": {"type": "string", "maxLength": MAX_PERSONA,
                "description": "Who the concierge is, e.g. \"Pip, the café's barista\""},
            "tone": {"type": "string", "maxLength": MAX_TONE,
                "description": "How it speaks, e.g. \"playful, short sentences\""},
            "language": {"type": "string", "maxLength": MAX_LANGUAGE,
                "description": "The language it answers in"},
            "avoid_topics": {"type": "array", "maxItems": MAX_TOPICS,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_TOPIC},
                "description": "Topics it politely declines"},
            "answer_length": {"enum": ["short", "medium", "long"]},
            "questions_per_member_per_day": {"type": "integer", "minimum": 1, "maximum": 1000},
            "answer_mentions": {"type": "boolean"},
            "memory_exchanges": {"type": "integer", "minimum": 0, "maximum": MAX_MEMORY}
        }
    })
}

impl Config {
    /// The guild's config (the host has checked it against [`schema`]).
    pub fn load() -> Result<Config, Error> {
        let mut config: Config = config::get_json()?;
        config.memory_exchanges = config.memory_exchanges.min(MAX_MEMORY);
        config.questions_per_member_per_day = config.questions_per_member_per_day.max(1);
        Ok(config)
    }
}
