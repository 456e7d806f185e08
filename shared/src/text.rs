//! What text people may put into the town: players' names and lines, team names.
//!
//! Names are normalised (NFKC), so a full-width "Ａｄａ" is the same name as "Ada", and compared
//! by their UTS #39 skeleton, so a Cyrillic "Аda" can be refused as a lookalike of a Latin
//! "Ada". Lines and team names lose the characters that change how text around them looks
//! without being seen: control and format characters (right-to-left overrides, zero-width
//! spaces, joiners) and line or paragraph separators.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A character that is not seen but changes how text around it reads or is laid out: Unicode's
/// control (Cc), format (Cf: bidirectional overrides and isolates, zero-width characters), line
/// separator (Zl) and paragraph separator (Zp) categories.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// `text` without invisible characters (whitespace among them, such as tabs and newlines,
/// becomes a space), trimmed.
pub fn visible(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() && is_invisible(c) => Some(' '),
            c if is_invisible(c) => None,
            c => Some(c),
        })
        .collect();
    kept.trim().to_string()
}

/// A name in its normal form (NFKC, trimmed): compatibility forms such as full-width letters
/// become the letters they stand for.
pub fn normal_name(name: &str) -> String {
    name.nfkc().collect::<String>().trim().to_string()
}

/// What a name looks like (UTS #39 skeleton of its normal form): two names with the same
/// skeleton can be told apart only by their code points (Latin "a" and Cyrillic "а", "l" and
/// "I").
pub fn skeleton(name: &str) -> String {
    unicode_security::confusable_detection::skeleton(&normal_name(name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_is_the_same_name_and_cyrillic_looks_the_same() {
        assert_eq!(normal_name(" Ａｄａ0 "), "Ada0");
        assert_ne!(normal_name("Аda0"), "Ada0", "Cyrillic А is another letter");
        assert_eq!(skeleton("Аda0"), skeleton("Ada0"));
        assert_eq!(skeleton("Ａｄａ0"), skeleton("Ada0"));
        assert_eq!(skeleton("Iris"), skeleton("lris"));
        assert_ne!(skeleton("Ada0"), skeleton("Bob0"));
    }

    #[test]
    fn invisible_characters_are_stripped_and_visible_ones_kept() {
        // Right-to-left override, zero-width space and joiner, line and paragraph separators,
        // a byte-order mark.
        assert_eq!(visible("hi\u{202E}dlrow"), "hidlrow");
        assert_eq!(visible("a\u{200B}b\u{200D}c\u{FEFF}"), "abc");
        assert_eq!(visible("one\u{2028}two\u{2029}three"), "one two three");
        assert_eq!(visible(" tab\there\n"), "tab here");
        assert_eq!(visible("\u{200B}"), "");
        assert_eq!(visible("café ☕ 東京"), "café ☕ 東京");
    }
}
