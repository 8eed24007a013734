//! A capturing `tracing` subscriber: the names of the spans made and the messages of the events
//! emitted, each with its fields rendered as text. `install` makes it the process's subscriber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// What was seen: `(kind, name or message, fields)`, kind `span` or `event`.
pub type Seen = Vec<(&'static str, String, String)>;

static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();

/// Code run for every span made and event emitted, as `(kind, name or message, fields)`.
type Hook = std::sync::Arc<dyn Fn(&'static str, &str, &str) + Send + Sync>;

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Runs `hook` on every span made and event emitted from now on, as the subscriber's own code
/// (on the thread that emits, with none of the capture's locks held).
#[allow(dead_code)]
pub fn on_each(hook: impl Fn(&'static str, &str, &str) + Send + Sync + 'static) {
    HOOKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(std::sync::Arc::new(hook));
}

struct Capture {
    next: AtomicU64,
    /// Each span's name and fields, by id: a span's entry also shows its parent's.
    spans: Mutex<HashMap<u64, String>>,
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.rest += &format!("{}={value:?} ", field.name());
        }
    }
}

fn push(kind: &'static str, name: String, fields: String) {
    let hooks = HOOKS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for hook in hooks {
        hook(kind, &name, &fields);
    }
    let seen = SEEN.get_or_init(Mutex::default);
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((kind, name, fields));
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut f = Fields::default();
        span.record(&mut f);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(parent) = span.parent().and_then(|p| spans.get(&p.into_u64())) {
            f.rest += &format!("in {parent}");
        }
        let name = span.metadata().name();
        spans.insert(id, format!("{name}{{{}}}", f.rest.trim_end()));
        drop(spans);
        push("span", name.to_string(), f.rest);
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        push("event", f.message, f.rest);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the capture as the process's subscriber (once): the engines' threads emit too.
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let capture = Capture {
            next: AtomicU64::new(1),
            spans: Mutex::default(),
        };
        tracing::subscriber::set_global_default(capture).expect("the only subscriber");
    });
}

/// What was seen so far whose fields mention `needle` (an address: other tests run
/// alongside).
pub fn seen(needle: &str) -> Seen {
    let seen = SEEN.get_or_init(Mutex::default);
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.iter()
        .filter(|(_, _, f)| f.contains(needle))
        .cloned()
        .collect()
}

/// How many events so far whose message contains `message` and whose fields `needle`.
pub fn count(message: &str, needle: &str) -> usize {
    seen(needle)
        .iter()
        .filter(|(kind, m, _)| *kind == "event" && m.contains(message))
        .count()
}
