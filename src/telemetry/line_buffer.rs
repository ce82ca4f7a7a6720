//! Log lines on their way to stdout. The thread that logs copies its line into a buffer in
//! memory; a thread of the buffer's own writes the buffer out in batches. A request's access
//! line then costs the HTTP worker a copy, not a `write` system call (and, behind it, the
//! file system's work or a wake-up of whatever reads the pipe); under load one `write` carries
//! a few hundred lines.
//!
//! Nothing is dropped: when the writer cannot keep up (stdout blocked), logging waits for room,
//! as a blocking write would. Lines go out in the order they were logged, each whole. A batch
//! is written at most `LINGER` after its first line; `flush` (at the end of `main`, and before
//! a panic's message) writes out everything logged before it.

use std::{
    io::Write,
    sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError},
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer waits for more lines after the first one of a batch.
const LINGER: Duration = Duration::from_millis(10);
/// A batch this large is written without waiting longer.
const BATCH: usize = 64 * 1024;
/// The most held in memory; beyond it, logging waits for the writer.
const LIMIT: usize = 4 * 1024 * 1024;

pub struct LineBuffer<W> {
    pending: Mutex<Vec<u8>>,
    /// Signalled when a line goes into an empty buffer and when the buffer reaches a batch.
    has_lines: Condvar,
    /// Signalled when the pending lines are taken to be written.
    has_room: Condvar,
    /// Held by whoever writes a batch, from taking it to having written it, so batches go out
    /// in the order they were taken.
    out: Mutex<W>,
    batch: usize,
    limit: usize,
    linger: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The buffer is only ever extended or swapped under its lock, so it is whole even if a
    // thread panicked holding it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Write + Send + 'static> LineBuffer<W> {
    /// A buffer for `out` with its writer thread running.
    pub fn start(out: W) -> Arc<Self> {
        Self::start_with(out, BATCH, LIMIT, LINGER)
    }

    fn start_with(out: W, batch: usize, limit: usize, linger: Duration) -> Arc<Self> {
        let buffer = Self::without_writer(out, batch, limit, linger);
        let writer = Arc::clone(&buffer);
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                let mut spare = Vec::with_capacity(writer.batch);
                loop {
                    spare = writer.write_next_batch(spare);
                }
            });
        if let Err(e) = spawned {
            // Without its thread the buffer is still written by every `flush`, and by `push`
            // once it is full; say so once rather than lose lines.
            eprintln!("players-api: starting the log writer thread: {e}");
        }
        buffer
    }

    fn without_writer(out: W, batch: usize, limit: usize, linger: Duration) -> Arc<Self> {
        Arc::new(LineBuffer {
            pending: Mutex::new(Vec::with_capacity(batch)),
            has_lines: Condvar::new(),
            has_room: Condvar::new(),
            out: Mutex::new(out),
            batch,
            limit,
            linger,
        })
    }

    /// Adds one or more whole lines.
    pub fn push(&self, lines: &[u8]) {
        let mut pending = lock(&self.pending);
        while pending.len() >= self.limit {
            let (guard, timeout) = self
                .has_room
                .wait_timeout(pending, self.linger)
                .unwrap_or_else(PoisonError::into_inner);
            pending = guard;
            if timeout.timed_out() && pending.len() >= self.limit {
                // The writer thread has not taken the lines (it is writing, or it never
                // started): write them here, as the caller would have without the buffer.
                drop(pending);
                self.flush();
                pending = lock(&self.pending);
            }
        }
        let before = pending.len();
        pending.extend_from_slice(lines);
        if before == 0 || (before < self.batch && pending.len() >= self.batch) {
            self.has_lines.notify_one();
        }
    }

    /// Writes out every line pushed before the call.
    pub fn flush(&self) {
        self.write_taken(Vec::new());
    }

    /// One round of the writer thread: waits for a line, then for more until `linger` has
    /// passed or a batch is full, and writes them. Returns the written buffer, emptied, for
    /// the next round.
    fn write_next_batch(&self, spare: Vec<u8>) -> Vec<u8> {
        let mut pending = lock(&self.pending);
        while pending.is_empty() {
            pending = self
                .has_lines
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let (pending, _) = self
            .has_lines
            .wait_timeout_while(pending, self.linger, |p| p.len() < self.batch)
            .unwrap_or_else(PoisonError::into_inner);
        drop(pending);
        self.write_taken(spare)
    }

    /// Takes the pending lines, leaving `spare` in their place, and writes them.
    fn write_taken(&self, mut spare: Vec<u8>) -> Vec<u8> {
        let mut out = lock(&self.out);
        spare.clear();
        if spare.capacity() > 4 * self.batch {
            // It grew while stdout was blocked; don't keep megabytes for an ordinary batch.
            spare = Vec::with_capacity(self.batch);
        }
        let mut taken = std::mem::replace(&mut *lock(&self.pending), spare);
        self.has_room.notify_all();
        if !taken.is_empty() {
            // A log line that cannot be written has nowhere else to go.
            let _ = out.write_all(&taken).and_then(|()| out.flush());
        }
        taken.clear();
        taken
    }
}

/// The writer `JsonLines` gets: each `write` is one whole line, pushed as it is.
pub struct Lines<'a, W>(&'a LineBuffer<W>);

impl<W: Write + Send + 'static> Write for Lines<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A shared buffer as `tracing_subscriber`'s writer factory.
#[derive(Clone)]
pub struct SharedLines<W>(pub Arc<LineBuffer<W>>);

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for SharedLines<W> {
    type Writer = Lines<'a, W>;
    fn make_writer(&'a self) -> Self::Writer {
        Lines(&self.0)
    }
}

static STDOUT: OnceLock<Arc<LineBuffer<std::io::Stdout>>> = OnceLock::new();

/// The process's buffer in front of stdout, started on first use, with a panic hook that
/// writes out what is pending before the panic's own message.
pub fn stdout() -> SharedLines<std::io::Stdout> {
    let buffer = STDOUT.get_or_init(|| {
        let buffer = LineBuffer::start(std::io::stdout());
        flush_on_panic(Arc::clone(&buffer));
        buffer
    });
    SharedLines(Arc::clone(buffer))
}

/// Chains a panic hook that writes out `buffer` before the hook installed before it (which
/// prints the panic's message), so the lines logged just before a panic are not lost with
/// the process.
fn flush_on_panic<W: Write + Send + 'static>(buffer: Arc<LineBuffer<W>>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        buffer.flush();
        previous(info)
    }));
}

/// Writes out the log lines pending for stdout, if any were logged.
pub fn flush_stdout() {
    if let Some(buffer) = STDOUT.get() {
        buffer.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A sink that records each `write` call and can hold the writer inside one.
    #[derive(Clone, Default)]
    struct Sink {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = &self.gate {
                let _ = gate.lock().unwrap().recv();
            }
            self.writes.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.writes.lock().unwrap().concat()).unwrap()
        }
        fn write_calls(&self) -> usize {
            self.writes.lock().unwrap().len()
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn flush_writes_every_line_pushed_before_it_in_one_write() {
        let sink = Sink::default();
        // The writer thread lingers an hour: only `flush` can write these.
        let buffer = LineBuffer::start_with(sink.clone(), 1 << 20, 1 << 22, HOUR);
        for i in 0..100 {
            buffer.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(sink.write_calls(), 0, "written before flush");
        buffer.flush();
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(sink.text(), expected);
        assert_eq!(sink.write_calls(), 1);
        buffer.flush();
        assert_eq!(sink.write_calls(), 1, "an empty flush writes nothing");
    }

    #[test]
    fn lines_logged_while_a_batch_is_being_written_go_out_together_in_order() {
        let (open, gate) = mpsc::channel();
        let sink = Sink {
            gate: Some(Arc::new(Mutex::new(gate))),
            ..Sink::default()
        };
        let buffer = LineBuffer::start_with(sink.clone(), 16, 1 << 20, Duration::ZERO);
        // The first line fills a batch: the writer takes it and waits inside `write`.
        buffer.push(b"first line, a batch\n");
        while !lock(&buffer.pending).is_empty() {
            std::thread::yield_now();
        }
        for i in 0..1000 {
            buffer.push(format!("{i}\n").as_bytes());
        }
        open.send(()).unwrap();
        drop(open); // every later write passes the gate
        buffer.flush();
        let expected: String = std::iter::once("first line, a batch\n".to_owned())
            .chain((0..1000).map(|i| format!("{i}\n")))
            .collect();
        assert_eq!(sink.text(), expected);
        assert_eq!(sink.write_calls(), 2, "1001 lines in two writes");
    }

    #[test]
    fn nothing_is_lost_when_loggers_outpace_the_writer() {
        let (open, gate) = mpsc::channel::<()>();
        let sink = Sink {
            gate: Some(Arc::new(Mutex::new(gate))),
            ..Sink::default()
        };
        // Room for about a hundred lines: eight threads of 500 must wait for the writer.
        let buffer = LineBuffer::start_with(sink.clone(), 64, 1024, Duration::ZERO);
        let loggers: Vec<_> = (0..8)
            .map(|t| {
                let buffer = Arc::clone(&buffer);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        buffer.push(format!("{t} {i:03}\n").as_bytes());
                    }
                })
            })
            .collect();
        // The writer is held in its first write until the loggers have filled the buffer.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while lock(&buffer.pending).len() < 1024 {
            assert!(
                std::time::Instant::now() < deadline,
                "the buffer never filled"
            );
            std::thread::yield_now();
        }
        // ... where they wait: the buffer holds no more than its limit and one line.
        assert!(lock(&buffer.pending).len() < 1024 + 8);
        assert!(!loggers.iter().all(|l| l.is_finished()));
        drop(open);
        for logger in loggers {
            logger.join().unwrap();
        }
        buffer.flush();
        let text = sink.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 500);
        for t in 0..8 {
            let own: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("{t} ")))
                .collect();
            let expected: Vec<String> = (0..500).map(|i| format!("{t} {i:03}")).collect();
            assert_eq!(own, expected, "logger {t}'s lines, whole and in order");
        }
        assert!(sink.write_calls() > 1);
    }

    #[test]
    fn without_its_writer_thread_a_full_buffer_is_written_by_the_logger() {
        let sink = Sink::default();
        let buffer = LineBuffer::without_writer(sink.clone(), 64, 256, Duration::ZERO);
        let (done, finished) = mpsc::channel();
        let logger = Arc::clone(&buffer);
        std::thread::spawn(move || {
            for i in 0..200 {
                logger.push(format!("line {i:03}\n").as_bytes());
            }
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("logging waited for a writer that does not exist");
        assert!(
            sink.write_calls() > 0,
            "the logger wrote the full buffer itself"
        );
        buffer.flush();
        let expected: String = (0..200).map(|i| format!("line {i:03}\n")).collect();
        assert_eq!(sink.text(), expected);
    }

    #[test]
    fn a_panic_writes_out_the_lines_logged_before_it() {
        let sink = Sink::default();
        let buffer = LineBuffer::start_with(sink.clone(), 1 << 20, 1 << 22, HOUR);
        flush_on_panic(Arc::clone(&buffer));
        buffer.push(b"the last line before the panic\n");
        let panicked = std::thread::spawn(|| panic!("on purpose")).join();
        assert!(panicked.is_err());
        assert_eq!(sink.text(), "the last line before the panic\n");
    }

    #[test]
    fn the_writer_thread_writes_a_batch_without_a_flush() {
        let sink = Sink::default();
        let buffer = LineBuffer::start_with(sink.clone(), 1 << 20, 1 << 22, Duration::ZERO);
        buffer.push(b"on its own\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sink.write_calls() == 0 {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::yield_now();
        }
        assert_eq!(sink.text(), "on its own\n");
    }
}
