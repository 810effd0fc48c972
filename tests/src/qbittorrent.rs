//! A qBittorrent WebAPI v2 client by hand, for tests that need the exact
//! HTTP calls (Sonarr's sequence, bad input) rather than a client
//! library's.

use std::time::Duration;

use serde_json::Value;

/// A qBittorrent WebAPI client by hand (ureq has no cookie jar here):
/// keeps the `SID` cookie `auth/login` sets.
pub struct Qbt {
    /// `http://host:port`.
    pub base: String,
    agent: ureq::Agent,
    /// The login cookie's value, once logged in.
    pub sid: Option<String>,
}

/// Status and body of an answer, whatever the status.
pub fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{e}"),
    }
}

impl Qbt {
    /// A client of the daemon at `base` (`http://host:port`), not logged in.
    pub fn new(base: &str) -> Qbt {
        Qbt {
            base: base.to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(20))
                .build(),
            sid: None,
        }
    }

    /// A request to `/api/v2/{path}`, with the `SID` cookie once logged in.
    pub fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = self
            .agent
            .request(method, &format!("{}/api/v2/{path}", self.base));
        match &self.sid {
            Some(sid) => r.set("Cookie", &format!("SID={sid}")),
            None => r,
        }
    }

    /// A GET: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        answer(self.request("GET", path).call())
    }

    /// A url-encoded form POST: status and body.
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        answer(self.request("POST", path).send_form(form))
    }

    /// A multipart POST: text fields, then files as (file name, bytes).
    pub fn multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &[u8])],
    ) -> (u16, String) {
        let boundary = "----bittideTestBoundary7MA4YWxk";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        for (file, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; \
                     filename=\"{file}\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        answer(
            self.request("POST", path)
                .set(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .send_bytes(&body),
        )
    }

    /// Logs in as `user`, keeping the `SID` cookie.
    pub fn login(&mut self, user: &str, pass: &str) {
        let r = self
            .request("POST", "auth/login")
            .send_form(&[("username", user), ("password", pass)])
            .expect("login");
        let cookie = r.header("set-cookie").expect("a SID cookie").to_owned();
        assert_eq!(r.into_string().unwrap(), "Ok.");
        let sid = cookie
            .split(';')
            .next()
            .and_then(|c| c.strip_prefix("SID="))
            .expect("SID=…");
        self.sid = Some(sid.to_owned());
    }

    /// A GET that must answer 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}
