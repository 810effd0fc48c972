//! nginx on loopback for the web seed tests (BEP 19): a foreground server
//! with a config of its own in a temporary folder, serving a folder with
//! range requests, its access log kept to count what it sent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{free_port, require_tool, ChildGuard};

/// Debian's nginx (in `/usr/sbin`, which a user's `PATH` may lack).
fn program() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// A running nginx; stopped when dropped.
pub struct Nginx {
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
    _child: ChildGuard,
}

impl Nginx {
    /// Serves `root` on 127.0.0.1, its config, pid, log and temp files
    /// under `dir`; `extra` goes into the `server` block (e.g.
    /// `limit_rate 2m;`). Returns once it accepts connections.
    pub fn serve(dir: &Path, root: &Path, extra: &str) -> Nginx {
        let program = program();
        require_tool(program, &["-v"], "nginx-light");
        std::fs::create_dir_all(dir).expect("the nginx folder");
        let log = dir.join("access.log");
        for _attempt in 0..5 {
            let port = free_port();
            let conf = dir.join("nginx.conf");
            let d = dir.display();
            // One process (`master_process off`), so killing it leaves no
            // worker behind holding the port. `$request_uri` and
            // `$http_range` show what was asked; the bytes sent are
            // counted in `sent_bytes`.
            let text = format!(
                "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  log_format bytes '$status $body_bytes_sent \"$http_range\" $request_uri';\n\
                 access_log {d}/access.log bytes;\n\
                 client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
                 server {{ listen 127.0.0.1:{port}; root {}; {extra} }}\n}}\n",
                root.display()
            );
            std::fs::write(&conf, text).expect("write nginx.conf");
            let child = Command::new(program)
                .args(["-c", conf.to_str().expect("UTF-8"), "-p"])
                .arg(dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start nginx");
            let mut guard = ChildGuard(child);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Nginx {
                        port,
                        log,
                        _child: guard,
                    };
                }
                if guard.0.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its access log: `status bytes "range" uri` a line.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Payload bytes it sent with status 206 or 200.
    pub fn sent_bytes(&self) -> u64 {
        self.log()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let status = f.next()?;
                let bytes: u64 = f.next()?.parse().ok()?;
                matches!(status, "200" | "206").then_some(bytes)
            })
            .sum()
    }
}
