//! Strings of random characters for the property tests, biased towards what breaks an output:
//! escape sequences, line breaks with workflow commands after them, `##[`, C1 controls, bidi
//! overrides and line separators, XML markup, a Sentry envelope's own header, long runs.

use proptest::prelude::*;

/// One hostile string of up to `pieces` pieces.
pub fn hostile_string(pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        (0u32..0x100).prop_map(|c| char::from_u32(c).unwrap().to_string()),
        Just("\x1b[2J".to_string()),
        Just("\n::error file=setup.py::x".to_string()),
        Just("##[error]".to_string()),
        Just("::".to_string()),
        Just("%0A%25".to_string()),
        Just("]]>".to_string()),
        Just("<&'\">".to_string()),
        Just("\u{fffe}\u{ffff}\u{202e}\u{2028}\u{2066}".to_string()),
        Just("\"}\n{\"type\":\"event\",\"length\":1}\n".to_string()),
        Just("x".repeat(3000)),
        "[a-z/._ ]{0,6}",
    ];
    prop::collection::vec(piece, 0..pieces).prop_map(|v| v.concat())
}
