//! Child processes of the tests: spawn one, read its stdout line by line with a deadline, kill
//! it, and tell how it ended. Crashes and corrupt files are tried in children so that an abort,
//! a panic or a kill never takes the test process down with it.

use std::io;
use std::io::BufRead;
use std::io::BufReader;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::process::ExitStatus;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code (101 is a Rust panic).
    Exited(i32),
    /// A signal ended it (9 is `SIGKILL`, 6 `SIGABRT`, 11 `SIGSEGV`).
    Signal(i32),
}

impl Ending {
    fn of(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(sig)) => Ending::Signal(sig),
            (None, None) => Ending::Exited(-1),
        }
    }
}

/// A running child whose stdout lines arrive on a channel.
pub struct Child {
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Child {
    /// Start `program` with `args`, stdout and stderr captured.
    pub fn spawn(program: &str, args: &[&str]) -> io::Result<Self> {
        let mut command = Command::new(program);
        command.args(args);
        Self::spawn_command(command)
    }

    /// Start `command` (with its arguments and environment set), stdout and stderr captured.
    pub fn spawn_command(mut command: Command) -> io::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("child has no stdout"))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("child has no stderr"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(Self {
            process: child,
            lines,
            stderr: Some(stderr),
        })
    }

    /// The next stdout line, waiting until `deadline`; `None` at the deadline or at end of output.
    pub fn line_before(&self, deadline: Instant) -> Option<String> {
        let wait = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(wait).ok()
    }

    /// Kill the child with `SIGKILL` (if still running), then collect every line it printed
    /// before dying, how it ended and its stderr.
    pub fn kill(mut self) -> io::Result<(Vec<String>, Ending, String)> {
        // Fails only if it already exited, which `wait` then reports.
        let _ = self.process.kill();
        self.finish()
    }

    /// Wait (up to `limit`, then kill) for the child to end by itself; its remaining lines, how
    /// it ended and its stderr.
    pub fn wait(mut self, limit: Duration) -> io::Result<(Vec<String>, Ending, String)> {
        let deadline = Instant::now() + limit;
        while self.process.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = self.process.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.finish()
    }

    fn finish(&mut self) -> io::Result<(Vec<String>, Ending, String)> {
        let status = self.process.wait()?;
        // The reader thread ends at end of file, once the dead child's pipe is drained.
        let lines: Vec<String> = self.lines.iter().collect();
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        Ok((lines, Ending::of(status), stderr))
    }
}
