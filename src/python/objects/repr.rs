//! A value as the report shows it, Python's own way where it can: `None`, `True`, `42`, `1e+16`,
//! `'text'`, `b'\x00'`, `[1, 'a', ...]`, `<Foo object at 0x7f...>`. Two modes: [`Mode::Full`]
//! (`--locals`) shows short strings and the first items of containers; [`Mode::Safe`] (the
//! report's header, on by default) shows only None, bools and numbers by value and the type
//! and length of everything else, so that no string content reaches a CI log unasked. Every
//! repr is cut at [`MAX_REPR`] characters, containers at [`MAX_ITEMS`] items and depth
//! [`MAX_DEPTH`].

use super::dict;
use super::known::Builtin;
use super::read::{IntValue, ObjectError, Objects};

/// Longest repr kept, in characters.
pub const MAX_REPR: usize = 160;
/// Characters of a string and bytes of a bytes object shown.
pub const MAX_TEXT: usize = 80;
/// Items of a container shown.
pub const MAX_ITEMS: usize = 5;
/// Containers inside containers shown to this depth; deeper ones are `[...]`.
pub const MAX_DEPTH: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Values of short strings and the first items of containers (`--locals`).
    Full,
    /// Values of None, bools and numbers only; type and length for the rest.
    Safe,
}

/// A value as shown: its type's name, its repr, and its length for strings, bytes and containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub type_name: String,
    pub repr: String,
    pub length: Option<u64>,
}

/// Shows the object at `obj`. Never fails: what cannot be read is shown as such.
pub fn show(o: &Objects<'_>, obj: u64, mode: Mode) -> Shown {
    if obj == 0 {
        return Shown { type_name: "?".into(), repr: "<unbound>".into(), length: None };
    }
    let type_name = o.type_name_of(obj);
    let mut length = None;
    let repr = match o.pay().and_then(|_| value(o, obj, mode, 0, &mut length)) {
        Ok(r) => r,
        Err(ObjectError::Budget) => "<not read: the budget for reading objects is spent>".into(),
        Err(_) => format!("<unreadable {} at {obj:#x}>", type_name),
    };
    Shown { type_name, repr: cut(repr, MAX_REPR), length }
}

fn value(o: &Objects<'_>, obj: u64, mode: Mode, depth: usize, length: &mut Option<u64>) -> Result<String, ObjectError> {
    let Some(kind) = o.builtin(obj) else {
        return Ok(format!("<{} object at {obj:#x}>", o.type_name_of(obj)));
    };
    Ok(match kind {
        Builtin::NoneType => "None".into(),
        Builtin::Bool if Some(obj) == o.known.true_ => "True".into(),
        Builtin::Bool if Some(obj) == o.known.false_ => "False".into(),
        Builtin::Bool | Builtin::Long => int_text(o.int(obj, false)?),
        Builtin::Int => int_text(o.int(obj, true)?),
        Builtin::Float => float_repr(o.float(obj)?),
        Builtin::Unicode2 => {
            // 2.7's unicode: its length only (its storage depends on the build).
            let n = o.var_size(obj)?;
            *length = Some(n);
            format!("<unicode, {}>", count(n, "character"))
        }
        Builtin::Str => {
            let (n, text) = o.str(obj, MAX_TEXT)?;
            *length = Some(n);
            match mode {
                Mode::Safe => format!("<str, {}>", count(n, "character")),
                Mode::Full => with_more(str_repr(&text), n as usize > text.chars().count()),
            }
        }
        Builtin::Bytes => {
            let (n, data) = o.bytes(obj, MAX_TEXT)?;
            *length = Some(n);
            // 2.7's str is bytes underneath but printed without the b prefix.
            let prefix = if o.l.major == 2 { "" } else { "b" };
            let what = if o.l.major == 2 { "str" } else { "bytes" };
            match mode {
                Mode::Safe => format!("<{what}, {}>", count(n, "byte")),
                Mode::Full => with_more(format!("{prefix}{}", bytes_repr(&data)), n as usize > data.len()),
            }
        }
        Builtin::Tuple | Builtin::List => {
            let list = kind == Builtin::List;
            let (n, items) = o.items(obj, list, MAX_ITEMS)?;
            *length = Some(n);
            let (open, close) = if list { ("[", "]") } else { ("(", ")") };
            match mode {
                Mode::Safe => format!("<{}, {}>", if list { "list" } else { "tuple" }, count(n, "item")),
                Mode::Full if depth >= MAX_DEPTH => format!("{open}...{close}"),
                Mode::Full => {
                    let mut parts = Vec::new();
                    for i in items {
                        parts.push(item(o, i, depth)?);
                    }
                    if n as usize > parts.len() {
                        parts.push("...".into());
                    }
                    let comma = if !list && n == 1 { "," } else { "" };
                    format!("{open}{}{comma}{close}", parts.join(", "))
                }
            }
        }
        Builtin::Dict => {
            let (n, entries) = dict::items(o, obj, MAX_ITEMS)?;
            *length = Some(n);
            match mode {
                Mode::Safe => format!("<dict, {}>", count(n, "item")),
                Mode::Full if depth >= MAX_DEPTH => "{...}".into(),
                Mode::Full => {
                    let mut parts = Vec::new();
                    for (k, v) in entries {
                        parts.push(format!("{}: {}", item(o, k, depth)?, item(o, v, depth)?));
                    }
                    if n as usize > parts.len() {
                        parts.push("...".into());
                    }
                    format!("{{{}}}", parts.join(", "))
                }
            }
        }
        Builtin::Set | Builtin::FrozenSet => {
            let n = o.set_len(obj)?;
            *length = Some(n);
            format!("<{}, {}>", if kind == Builtin::Set { "set" } else { "frozenset" }, count(n, "item"))
        }
        Builtin::Cell => format!("<cell at {obj:#x}>"),
    })
}

/// An item of a container, one level deeper.
fn item(o: &Objects<'_>, obj: u64, depth: usize) -> Result<String, ObjectError> {
    o.pay()?;
    let mut ignored = None;
    match value(o, obj, Mode::Full, depth + 1, &mut ignored) {
        Err(ObjectError::Budget) => Err(ObjectError::Budget),
        Err(_) => Ok("<unreadable>".into()),
        Ok(s) => Ok(cut(s, MAX_REPR / 2)),
    }
}

/// `3 items`, `1 item`.
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn with_more(s: String, more: bool) -> String {
    if more {
        format!("{s}...")
    } else {
        s
    }
}

fn cut(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn int_text(v: IntValue) -> String {
    match v {
        IntValue::Exact(n) => n.to_string(),
        IntValue::Big { negative, bits } => {
            format!("<{}int of about {bits} bits>", if negative { "negative " } else { "" })
        }
    }
}

/// `repr(float)`: the shortest text that reads back the same, in fixed notation for exponents
/// from -4 to 15 and in scientific notation (`1e+16`, `1.5e-05`) otherwise.
pub fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.5e-5`, `1e16`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{text}")
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// `repr(str)`: quoted like Python (single quotes unless the text has one and no double),
/// with backslash escapes for quotes, backslashes and every non-printable character.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// What Python's `str.isprintable` refuses, approximately: controls, separators other than
/// space, format characters (bidi controls, zero-width), surrogates and the replacement of
/// undecodable data.
fn printable(c: char) -> bool {
    let n = c as u32;
    !(c.is_control()
        || (0x2000..=0x200f).contains(&n) && n != 0x2000
        || (0x2028..=0x202f).contains(&n)
        || (0x2060..=0x206f).contains(&n)
        || n == 0xfeff
        || n == 0xa0
        || n == 0xad)
}

/// `repr(bytes)` without the `b`: printable ASCII as is, `\n`, `\t`, `\r`, the rest as `\xNN`.
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') { b'"' } else { b'\'' };
    let mut out = String::with_capacity(b.len() + 2);
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_python_prints_them() {
        for (v, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0.0"),
            (3e100, "3e+100"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(float_repr(v), want, "{v}");
        }
        assert_eq!(float_repr(f64::NAN), "nan");
    }

    #[test]
    fn strings_and_bytes_as_python_prints_them() {
        assert_eq!(str_repr("abc"), "'abc'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("tab\there\n\x1b[2J"), "'tab\\there\\n\\x1b[2J'");
        assert_eq!(str_repr("日本 \u{202e}"), "'日本 \\u202e'");
        assert_eq!(bytes_repr(b"a\x00\xff'"), "\"a\\x00\\xff'\"");
    }
}
