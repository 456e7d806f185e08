//! Prompt templates: the text the language model is given, as files in `assets/prompts/` that
//! modders can change without touching code. A template is checked when it is loaded (every
//! placeholder must be one its purpose fills), so a typo is an error naming the file at
//! start-up, never a silently odd prompt in the middle of a run.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the templates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt template {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prompt template {}: {what}", .path.display())]
    Invalid { path: PathBuf, what: String },
}

/// One checked template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    text: String,
    /// SHA-256 of the file, hex (provenance: runs record it).
    pub hash: String,
}

/// Templates bigger than this are refused (a prompt must fit the model's context anyway).
const MAX_TEMPLATE_BYTES: u64 = 16 * 1024;

/// Splits a template into literal text and placeholders; `{{` and `}}` are literal braces.
fn parts(text: &str) -> Result<Vec<(bool, String)>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    return Err(format!(
                        "bad placeholder {{{name}}}: use {{name}}, or {{{{ for a brace"
                    ));
                }
                out.push((false, std::mem::take(&mut literal)));
                out.push((true, name));
            }
            '}' => return Err("a lone } (write }} for a brace)".into()),
            c => literal.push(c),
        }
    }
    out.push((false, literal));
    Ok(out)
}

impl Template {
    /// Reads and checks `path`: only `allowed` placeholders, each of `required` present.
    pub fn load(path: &Path, allowed: &[&str], required: &[&str]) -> Result<Self, PromptError> {
        let invalid = |what: String| PromptError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let read = |source| PromptError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if !meta.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        if meta.len() > MAX_TEMPLATE_BYTES {
            return Err(invalid(format!(
                "{} bytes, more than the {MAX_TEMPLATE_BYTES} allowed",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text, allowed, required).map_err(invalid)
    }

    /// Checks a template's text (see [`Self::load`]).
    pub fn parse(text: &str, allowed: &[&str], required: &[&str]) -> Result<Self, String> {
        let names: Vec<String> = (parts(text)?.into_iter())
            .filter(|(is_name, _)| *is_name)
            .map(|(_, n)| n)
            .collect();
        if let Some(unknown) = names.iter().find(|n| !allowed.contains(&n.as_str())) {
            return Err(format!(
                "unknown placeholder {{{unknown}}}; this template can use {}",
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(missing) = required.iter().find(|r| !names.iter().any(|n| n == *r)) {
            return Err(format!("needs the placeholder {{{missing}}}"));
        }
        // The file's last line break (editors add one) is not part of the prompt: the model
        // continues the template's last line.
        let prompt = text.strip_suffix('\n').unwrap_or(text);
        let prompt = prompt.strip_suffix('\r').unwrap_or(prompt);
        Ok(Self {
            hash: (Sha256::digest(text.as_bytes()).iter())
                .map(|b| format!("{b:02x}"))
                .collect(),
            text: prompt.to_string(),
        })
    }

    /// The template with each placeholder replaced by its value (absent ones by nothing).
    pub fn render(&self, values: &BTreeMap<&str, String>) -> String {
        let mut out = String::with_capacity(self.text.len() * 2);
        for (is_name, part) in parts(&self.text).unwrap_or_default() {
            if is_name {
                out.push_str(values.get(part.as_str()).map_or("", String::as_str));
            } else {
                out.push_str(&part);
            }
        }
        out
    }
}

/// Every template cognition uses, from a folder (`assets/prompts`).
#[derive(Clone, Debug)]
pub struct Prompts {
    pub conversation: Template,
    pub interview: Template,
    pub reflection: Template,
    pub plan: Template,
    pub decompose: Template,
    pub news: Template,
}

/// What `reflection.txt` may use, and must.
pub const REFLECTION_PLACEHOLDERS: &[&str] = &["agent", "memories"];

/// What `interview.txt` may use, and must.
pub const INTERVIEW_PLACEHOLDERS: &[&str] = &["agent", "memory", "question"];

/// What `plan.txt` may use, and must.
pub const PLAN_PLACEHOLDERS: &[&str] = &["agent", "age", "traits", "memories", "day", "free"];

/// What `decompose.txt` may use, and must.
pub const DECOMPOSE_PLACEHOLDERS: &[&str] = &["agent", "activity", "place", "start", "end"];

/// What `conversation.txt` may use, and must.
pub const CONVERSATION_PLACEHOLDERS: &[&str] = &[
    "speaker",
    "speaker_age",
    "speaker_traits",
    "speaker_style",
    "speaker_activity",
    "place",
    "listener",
    "memories",
    "lines",
];

/// What `news.txt` may use, and must.
pub const NEWS_PLACEHOLDERS: &[&str] = &["agent", "listener", "memory"];

impl Prompts {
    pub fn load(folder: &Path) -> Result<Self, PromptError> {
        Ok(Self {
            conversation: Template::load(
                &folder.join("conversation.txt"),
                CONVERSATION_PLACEHOLDERS,
                &["speaker", "lines"],
            )?,
            interview: Template::load(
                &folder.join("interview.txt"),
                INTERVIEW_PLACEHOLDERS,
                &["memory", "question"],
            )?,
            reflection: Template::load(
                &folder.join("reflection.txt"),
                REFLECTION_PLACEHOLDERS,
                &["memories"],
            )?,
            plan: Template::load(&folder.join("plan.txt"), PLAN_PLACEHOLDERS, &["agent"])?,
            decompose: Template::load(
                &folder.join("decompose.txt"),
                DECOMPOSE_PLACEHOLDERS,
                &["activity"],
            )?,
            news: Template::load(&folder.join("news.txt"), NEWS_PLACEHOLDERS, &["memory"])?,
        })
    }

    /// File name -> SHA-256, for a run's summary.
    pub fn hashes(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "conversation.txt".to_string(),
                self.conversation.hash.clone(),
            ),
            ("interview.txt".to_string(), self.interview.hash.clone()),
            ("reflection.txt".to_string(), self.reflection.hash.clone()),
            ("plan.txt".to_string(), self.plan.hash.clone()),
            ("decompose.txt".to_string(), self.decompose.hash.clone()),
            ("news.txt".to_string(), self.news.hash.clone()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let t = Template::parse("{a} says {{hi}} to {b}.", &["a", "b"], &["a"]).unwrap();
        let values = BTreeMap::from([("a", "Iris".to_string()), ("b", "Bo".to_string())]);
        assert_eq!(t.render(&values), "Iris says {hi} to Bo.");
        let t = Template::parse("{a}:\n", &["a"], &[]).unwrap();
        assert_eq!(
            t.render(&values),
            "Iris:",
            "the file's final newline is not prompted"
        );
    }

    #[test]
    fn broken_templates_are_clear_errors() {
        let err =
            |text: &str| Template::parse(text, &["speaker", "lines"], &["lines"]).unwrap_err();
        assert!(err("{speakr} {lines}").contains("unknown placeholder {speakr}"));
        assert!(err("{speakr} {lines}").contains("{speaker}, {lines}"));
        assert!(err("{speaker}").contains("needs the placeholder {lines}"));
        assert!(err("{lines} }").contains("lone }"));
        assert!(err("{Lines}").contains("bad placeholder"));
    }

    #[test]
    fn the_shipped_templates_load_and_a_missing_one_names_its_file() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/prompts");
        let prompts = Prompts::load(&shipped).unwrap();
        assert_eq!(prompts.hashes()["conversation.txt"].len(), 64);
        let dir = tempfile::tempdir().unwrap();
        let e = Prompts::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("conversation.txt"), "{e}");
        std::fs::write(dir.path().join("conversation.txt"), "{speaker}: {oops}").unwrap();
        let e = Prompts::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("conversation.txt") && e.contains("{oops}"),
            "{e}"
        );
        std::fs::write(dir.path().join("conversation.txt"), "{lines}{speaker}:").unwrap();
        let e = Prompts::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("interview.txt"), "{e}");
    }
}
