//! A private PostgreSQL cluster for a test (`INTEROP.md`): `initdb` in a
//! temporary folder, the server on 127.0.0.1 and a free port (its socket
//! in the same folder), stopped and deleted when dropped. As root the
//! cluster is made and run by the `postgres` user (initdb refuses root).

use std::path::PathBuf;
use std::process::Command;

use crate::TempDir;

/// A running cluster.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
}

/// Where Debian puts the server's programs (the newest version there).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").is_file());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (Debian package `postgresql`; ./scripts/test installs it)"
        )
    })
}

impl Postgres {
    /// Makes and starts a cluster (at most a minute).
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = TempDir::new("postgres");
        let root = std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster's folder to postgres");
        }
        let port = crate::free_port();
        let pg = Postgres {
            dir,
            bin,
            as_postgres: root,
            port,
        };
        let data = pg.data();
        let log = pg.dir.path().join("log");
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let options = format!(
            "-k {} -h 127.0.0.1 -p {port} -c fsync=off -c max_connections=50",
            pg.dir.path().display()
        );
        pg.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// `program` of the server's, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if !self.as_postgres {
            return Command::new(exe);
        }
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A URL for its `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// A URL for database `name`.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}
