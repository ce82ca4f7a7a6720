//! JSON lines on stdout, one object per line, with the fields of every enclosing span
//! (request_id, trace_id, principal, route, ...) flattened into the root object so that
//! CloudWatch Logs Insights can filter on them directly. The lines reach stdout through
//! `line_buffer`, in batches written by a thread of their own.

use std::io::Write;

use serde_json::Value;
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{ParseError, Targets},
    fmt::MakeWriter,
    layer::Context,
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `extra` is an optional further layer (OpenTelemetry).
///
/// LOG_LEVEL filters what is logged. With no further layer it filters the whole subscriber,
/// once for each callsite and span. Otherwise it filters only the log layer, which then looks
/// every span up again on each enter and exit; a database stream enters its span once for
/// each row it yields, and those lookups were 2 % of serving a page of 50 players. For the
/// same reason a LOG_LEVEL without span or field directives (`[...]`), a level or a list of
/// `target=level` such as `info,sqlx=warn`, is applied as `Targets`, which decides once per
/// callsite: `EnvFilter` looks each span up on every enter and exit even with nothing to
/// match on it (another 2 % of a page).
pub fn init<L>(settings: &LogSettings, extra: Option<L>) -> anyhow::Result<()>
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let spec = settings.log_level.as_str();
    let invalid =
        |e: &dyn std::fmt::Display| anyhow::anyhow!("LOG_LEVEL is not a valid filter: {e}");
    let registry = tracing_subscriber::registry();
    match (extra, as_targets(spec)) {
        (None, Some(targets)) => registry
            .with(targets.map_err(|e| invalid(&e))?)
            .with(lines(settings.log_format))
            .try_init()?,
        (None, None) => registry
            .with(EnvFilter::try_new(spec).map_err(|e| invalid(&e))?)
            .with(lines(settings.log_format))
            .try_init()?,
        (Some(extra), _) => {
            let filter = EnvFilter::try_new(spec).map_err(|e| invalid(&e))?;
            registry
                .with(extra)
                .with(lines(settings.log_format).with_filter(filter))
                .try_init()?
        }
    }
    Ok(())
}

/// LOG_LEVEL as `Targets`, unless it has a span or field directive (`[...]`), which only
/// `EnvFilter` understands.
fn as_targets(spec: &str) -> Option<Result<Targets, ParseError>> {
    (!spec.contains('[')).then(|| spec.parse::<Targets>())
}

/// The layer writing log lines in `format`.
fn lines<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Json => JsonLines::new(super::line_buffer::stdout()).boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    }
}

/// The layer writing JSON lines.
///
/// A line is written straight into one buffer, field by field, with no intermediate map: the
/// event's own fields first, then each enclosing span's, innermost first, a name already
/// written being skipped (so an event field wins over a span field, an inner span over an
/// outer one). Span fields are JSON-encoded once, when the span records them, and copied
/// into every line of the span. Each line reaches the writer in one `write_all`.
pub struct JsonLines<W> {
    make_writer: W,
}

impl<W: for<'w> MakeWriter<'w> + 'static> JsonLines<W> {
    pub fn new(make_writer: W) -> Self {
        JsonLines { make_writer }
    }
}

/// One field: its name and its value, already JSON-encoded.
type Encoded = (&'static str, String);

/// Span fields, kept in the span's extensions.
struct SpanFields(Vec<Encoded>);

/// Collects fields as JSON; a field recorded again replaces its earlier value.
struct Collect<'a>(&'a mut Vec<Encoded>);

impl Collect<'_> {
    fn put(&mut self, field: &Field, json: String) {
        let name = field.name();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = json,
            None => self.0.push((name, json)),
        }
    }
}

fn json_str(s: &str) -> String {
    // Serialising a str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, json_str(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.to_string());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null.
        self.put(field, Value::from(value).to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.to_string());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, json_str(&format!("{value:?}")));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, json_str(&format!("{value:?}")));
    }
}

/// Writes the fields not written yet; `written` holds the names already in the line.
fn write_fields(line: &mut Vec<u8>, written: &mut Vec<&'static str>, fields: &[Encoded]) {
    for (name, json) in fields {
        if written.contains(name) {
            continue;
        }
        written.push(name);
        if line.len() > 1 {
            line.push(b',');
        }
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *line, name);
        line.push(b':');
        line.extend_from_slice(json.as_bytes());
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = Vec::new();
            attrs.record(&mut Collect(&mut fields));
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Collect(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Vec::with_capacity(8);
        event.record(&mut Collect(&mut fields));
        fields.push((
            "timestamp",
            json_str(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        ));
        fields.push(("level", json_str(meta.level().as_str())));
        fields.push(("target", json_str(meta.target())));
        let mut line = Vec::with_capacity(512);
        line.push(b'{');
        let mut written = Vec::with_capacity(24);
        write_fields(&mut line, &mut written, &fields);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(spanned) = span.extensions().get::<SpanFields>() {
                    write_fields(&mut line, &mut written, &spanned.0);
                }
            }
        }
        line.extend_from_slice(b"}\n");
        // A log line that cannot be written has nowhere else to go.
        let _ = self.make_writer.make_writer().write_all(&line);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A level or `target=level` list is applied as `Targets`, with `EnvFilter`'s meaning;
    /// span and field directives still go to `EnvFilter`; a bad level is refused.
    #[test]
    fn log_level_without_span_directives_is_a_targets_filter() {
        use tracing::Level;
        let targets = as_targets("info,sqlx=warn").unwrap().unwrap();
        assert!(targets.would_enable("players_api::routes", &Level::INFO));
        assert!(!targets.would_enable("players_api::routes", &Level::DEBUG));
        assert!(targets.would_enable("sqlx::query", &Level::WARN));
        assert!(!targets.would_enable("sqlx::query", &Level::INFO));
        let warn = as_targets("warn").unwrap().unwrap();
        assert!(!warn.would_enable("players_api", &Level::INFO));

        assert!(as_targets("info,[request{route}]=debug").is_none());
        assert!(EnvFilter::try_new("info,[request{route}]=debug").is_ok());
        assert!(as_targets("info,sqlx=loud").unwrap().is_err());
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    fn raw_lines_of(f: impl FnOnce()) -> Vec<String> {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(out.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn lines_of(f: impl FnOnce()) -> Vec<Value> {
        raw_lines_of(f)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn event_fields_win_over_inner_spans_which_win_over_outer_ones() {
        let lines = lines_of(|| {
            let outer = tracing::info_span!("request", request_id = "r-1", route = "outer");
            let _o = outer.enter();
            let inner =
                tracing::info_span!("db", route = "inner", principal_id = tracing::field::Empty);
            inner.record("principal_id", "p-2");
            let _i = inner.enter();
            tracing::info!(
                event = "access",
                status = 200_u64,
                latency_ms = 1.5,
                "request completed"
            );
            tracing::warn!(route = "event", "overridden");
        });
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        assert_eq!(first["request_id"], "r-1");
        assert_eq!(first["route"], "inner");
        assert_eq!(first["principal_id"], "p-2");
        assert_eq!(first["status"], 200);
        assert_eq!(first["latency_ms"], 1.5);
        assert_eq!(first["message"], "request completed");
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["target"], module_path!());
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["route"], "event");
        assert_eq!(lines[1]["level"], "WARN");
    }

    #[test]
    fn every_value_is_valid_json_and_every_name_appears_once() {
        let raw = raw_lines_of(|| {
            let span = tracing::info_span!("request", quote = "span's", escaped = "a\"b\\c\n\u{1}");
            let _s = span.enter();
            tracing::info!(
                not_a_number = f64::NAN,
                negative = -3_i64,
                flag = true,
                debugged = ?vec!["x\"y"],
                quote = "event's",
                "done"
            );
        });
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0].matches("\"quote\":").count(), 1, "{}", raw[0]);
        let line: Value = serde_json::from_str(&raw[0]).unwrap();
        assert_eq!(line["not_a_number"], Value::Null);
        assert_eq!(line["negative"], -3);
        assert_eq!(line["flag"], true);
        assert_eq!(line["debugged"], json!("[\"x\\\"y\"]"));
        assert_eq!(line["quote"], "event's");
        assert_eq!(line["escaped"], "a\"b\\c\n\u{1}");
    }
}
