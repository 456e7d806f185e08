use std::fmt;
use std::path::PathBuf;

/// One problem in a persona file, precise enough to fix without reading the code:
/// the file, the line, the field and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonaError {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is with the file as a whole.
    pub line: usize,
    /// Dotted path of the field (`visits[1].place`); empty when not about one field.
    pub field: String,
    pub message: String,
}

impl fmt::Display for PersonaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for PersonaError {}
