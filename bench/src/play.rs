//! Runs a [`Load`] to completion from synchronous code: its own runtime, a progress bar.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::args::EngineArgs;
use crate::engine::{self, Load, Outcome, Pace, Prepared};

/// Plays `requests` (`total` of them, cycling) against `addr`; returns the outcomes in
/// completion order and how long the run took.
///
/// # Errors
/// No connection could be opened; the runtime could not start.
pub fn play(
    addr: SocketAddr,
    engine_args: &EngineArgs,
    requests: Vec<Prepared>,
    total: usize,
    pace: Pace,
    duration: Option<Duration>,
) -> anyhow::Result<(Vec<Outcome>, Duration)> {
    // Multi-thread even for one thread: the I/O driver then runs beside the connection tasks
    // rather than between them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(engine_args.threads.max(1))
        .enable_all()
        .build()?;
    let progress = Arc::new(AtomicUsize::new(0));
    let bar = Progress::start(progress.clone(), total, duration);
    let load = Load {
        requests: Arc::new(requests),
        total,
        connections: engine_args.connections,
        pace,
        duration,
    };
    let result = runtime.block_on(engine::run(addr, load, progress));
    bar.stop();
    result
}

/// A progress bar on stderr while a run lasts (hidden when stderr is not a terminal).
struct Progress {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Progress {
    fn start(done: Arc<AtomicUsize>, total: usize, duration: Option<Duration>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // A timed run ends by the clock, not by the count: show seconds then.
        let (length, template) = match duration {
            Some(d) => (
                d.as_secs(),
                "{elapsed_precise} [{bar:40}] {pos}/{len} s   {msg}",
            ),
            None => (
                total as u64,
                "{elapsed_precise} [{bar:40}] {pos}/{len} requests {per_sec}",
            ),
        };
        let bar = indicatif::ProgressBar::new(length);
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let n = done.load(Ordering::Relaxed) as u64;
                if duration.is_some() {
                    bar.set_position(bar.elapsed().as_secs());
                    bar.set_message(format!("{n} requests"));
                } else {
                    bar.set_position(n);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
