//! libtorrent, the interop tests' reference client, driven through
//! `tests/interop/lt_tool.py`: Debian's `python3-libtorrent` (2.0) and the
//! `libtorrent` wheel from PyPI (2.1) in a virtualenv of its own that
//! `scripts/test` makes (`target/lt-venv`, or `BITTIDE_LT_PYTHON`): the
//! two speak BEP 52 a little differently (2.1 asks for block hashes of
//! hybrids too).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Command;

use crate::{require_tool, workspace_root, ChildGuard, DEBIAN_PYTHON};

/// Which libtorrent runs `lt_tool.py`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libtorrent {
    /// Debian's `python3-libtorrent` under `/usr/bin/python3`.
    Debian,
    /// The PyPI wheel, 2.1.x, in `scripts/test`'s virtualenv.
    Pypi,
}

impl Libtorrent {
    /// The python to run `lt_tool.py` with; fails with how to get it when
    /// it is missing.
    pub fn python(self) -> PathBuf {
        match self {
            Libtorrent::Debian => {
                require_tool(
                    DEBIAN_PYTHON,
                    &["-c", "import libtorrent"],
                    "python3-libtorrent",
                );
                PathBuf::from(DEBIAN_PYTHON)
            }
            Libtorrent::Pypi => {
                let python = std::env::var_os("BITTIDE_LT_PYTHON")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace_root().join("target/lt-venv/bin/python"));
                let version = Command::new(&python)
                    .args(["-c", "import libtorrent; print(libtorrent.__version__)"])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
                assert!(
                    version.as_deref().is_some_and(|v| v.starts_with("2.1")),
                    "{} has no libtorrent 2.1 ({version:?}): run ./scripts/test once (it makes \
                     the virtualenv with PyPI's libtorrent), or set BITTIDE_LT_PYTHON",
                    python.display()
                );
                python
            }
        }
    }

    /// Runs `lt_tool.py ARGS` to its end; its stdout, trimmed.
    pub fn run(self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|why| panic!("{why}"))
    }

    /// [`run`](Libtorrent::run), with a failure as an error: its exit
    /// status and stderr.
    pub fn try_run(self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(self.python())
            .arg(workspace_root().join("tests/interop/lt_tool.py"))
            .args(args)
            .output()
            .expect("run lt_tool.py");
        if !out.status.success() {
            return Err(format!(
                "lt_tool.py {args:?} ({self:?}) failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Starts `lt_tool.py ARGS` (a seeder of some kind) and returns once
    /// it prints `ready` (failing after 60 s); the guard stops it.
    ///
    /// A seeder that dies before it is ready (libtorrent has crashed at
    /// session start on CI, with nothing on stderr) is started once more,
    /// and says so on stderr; a second failure fails the test with both
    /// accounts.
    pub fn server(self, args: &[&str]) -> ChildGuard {
        let python = self.python();
        let first = match start_server(&python, args) {
            Ok(guard) => return guard,
            Err(why) => why,
        };
        eprintln!("libtorrent {args:?} did not start ({first}); starting it once more");
        match start_server(&python, args) {
            Ok(guard) => guard,
            Err(second) => panic!("libtorrent {args:?} did not start: {first}; again: {second}"),
        }
    }
}

fn start_server(python: &std::path::Path, args: &[&str]) -> Result<ChildGuard, String> {
    let mut child = Command::new(python)
        .arg(workspace_root().join("tests/interop/lt_tool.py"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let out = child.stdout.take().expect("piped stdout");
    // Its stderr is read all along (a full pipe would block it) and kept
    // for the failure message: why it did not start.
    let err = child.stderr.take().expect("piped stderr");
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let said = said.clone();
        move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = said.lock().unwrap_or_else(|p| p.into_inner());
                if s.len() < 8192 {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        }
    });
    let mut guard = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(60));
    if line.as_deref().map(str::trim) == Ok("ready") {
        return Ok(guard);
    }
    let printed = match &line {
        Ok(l) if l.is_empty() => "closed its output".to_string(),
        Ok(l) => format!("printed {:?}", l.trim()),
        Err(_) => "printed nothing in 60 s".to_string(),
    };
    let _ = guard.0.kill();
    let status = guard.0.wait();
    // stderr ends with the process; its reader then has all of it.
    let _ = reader.join();
    let said = said.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
    Err(format!("it {printed}, {status}, stderr: {said:?}"))
}
