//! Sentry's envelope format (develop.sentry.dev/sdk/envelopes/): a header line, then per item a
//! header line with the payload's `length` and the payload, each followed by a newline. One
//! envelope per report: the event, then the text and JSON reports as attachments.

use serde::Serialize;

use super::Rendered;
use crate::report::model::Crash;
use crate::report::render::{escape, Json, Render, Style, Text};

/// An attachment larger than this is left out (the event says so): trackers take 100 MB in
/// all, but a report that large is better read from the CI artifacts.
pub const MAX_ATTACHMENT_BYTES: usize = 10 << 20;

/// One envelope: the event and its attachments.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub event_id: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub header: ItemHeader,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemHeader {
    #[serde(rename = "type")]
    pub ty: ItemType,
    pub length: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Event,
    Attachment,
}

#[derive(Serialize)]
struct EnvelopeHeader<'a> {
    event_id: &'a str,
    sdk: super::event::Sdk,
}

impl Envelope {
    /// The event of a report and, unless `attachments` is false, the report as text and JSON.
    pub fn of(crash: &Crash, event: &Rendered, attachments: bool) -> Envelope {
        let mut items =
            vec![Item::new(ItemType::Event, Some("application/json"), None, event.json.clone().into_bytes())];
        if attachments {
            let stem = stem(crash);
            let text = Text { style: Style::plain() }.render(crash);
            let json = Json.render(crash);
            for (name, ct, body) in
                [(format!("{stem}.txt"), "text/plain", text), (format!("{stem}.json"), "application/json", json)]
            {
                if body.len() <= MAX_ATTACHMENT_BYTES {
                    items.push(Item::new(ItemType::Attachment, Some(ct), Some(name), body.into_bytes()));
                }
            }
        }
        Envelope { event_id: event.event_id.clone(), items }
    }

    /// The same envelope without its attachments (for a tracker that found it too large).
    pub fn without_attachments(&self) -> Envelope {
        let items = self.items.iter().filter(|i| i.header.ty != ItemType::Attachment).cloned().collect();
        Envelope { event_id: self.event_id.clone(), items }
    }

    pub fn has_attachments(&self) -> bool {
        self.items.iter().any(|i| i.header.ty == ItemType::Attachment)
    }

    /// The bytes sent.
    pub fn encode(&self) -> Vec<u8> {
        let header = EnvelopeHeader {
            event_id: &self.event_id,
            sdk: super::event::Sdk { name: "crashcatch", version: env!("CARGO_PKG_VERSION") },
        };
        let mut out = Vec::with_capacity(self.items.iter().map(|i| i.payload.len() + 128).sum::<usize>() + 128);
        out.extend_from_slice(line(&header).as_bytes());
        for item in &self.items {
            out.extend_from_slice(line(&item.header).as_bytes());
            out.extend_from_slice(&item.payload);
            out.push(b'\n');
        }
        out
    }
}

impl Item {
    fn new(ty: ItemType, content_type: Option<&'static str>, filename: Option<String>, payload: Vec<u8>) -> Item {
        Item { header: ItemHeader { ty, length: payload.len(), content_type, filename }, payload }
    }
}

/// One header: compact JSON (no newline inside, as the format requires), then a newline.
fn line<T: Serialize>(h: &T) -> String {
    let mut s = escape::json::harden(serde_json::to_string(h).unwrap_or_else(|_| "{}".into()));
    s.push('\n');
    s
}

/// `crash-<pid>-<time>`, as the report files are named (digits only from the time).
fn stem(crash: &Crash) -> String {
    let stamp: String = crash.time.chars().filter(|c| c.is_ascii_digit() || *c == 'T').take(15).collect();
    format!("{}-{}-{}", crash.kind.as_str(), crash.process.pid, stamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{CrashKind, ProcessInfo, SignalReport};

    #[test]
    fn items_with_their_lengths() {
        let process = ProcessInfo { pid: 42, cmdline: vec!["py\nthon".into()], ..Default::default() };
        let crash = Crash::minimal(
            CrashKind::Crash,
            "2026-11-25T15:04:12.123Z".into(),
            process,
            SignalReport::default(),
            42,
            "n".into(),
        );
        let ev = Rendered { event_id: "ab".repeat(16), json: "{\"a\":1}".into(), left_out: vec![] };
        let env = Envelope::of(&crash, &ev, true);
        let bytes = env.encode();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.split('\n');
        assert_eq!(
            lines.next().unwrap(),
            format!(
                "{{\"event_id\":\"{}\",\"sdk\":{{\"name\":\"crashcatch\",\"version\":\"{}\"}}}}",
                "ab".repeat(16),
                env!("CARGO_PKG_VERSION")
            )
        );
        // Walk the items by their lengths, as a tracker does.
        let mut rest = &text[text.find('\n').unwrap() + 1..];
        let mut names = Vec::new();
        while !rest.is_empty() {
            let (h, after) = rest.split_once('\n').unwrap();
            let h: serde_json::Value = serde_json::from_str(h).unwrap();
            let len = h["length"].as_u64().unwrap() as usize;
            assert_eq!(&after[len..len + 1], "\n");
            names.push(h["filename"].as_str().unwrap_or("event").to_string());
            rest = &after[len + 1..];
        }
        assert_eq!(names, ["event", "crash-42-20261125T150412.txt", "crash-42-20261125T150412.json"]);
        assert!(!env.without_attachments().has_attachments());
    }
}
