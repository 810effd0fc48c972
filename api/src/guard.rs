//! The checks every request passes before a handler runs, in this order:
//!
//! 1. **Host** (DNS rebinding, the hole Transmission had in 2018,
//!    CVE-2018-5702): a web page on `evil.example` whose name an attacker
//!    re-points at 127.0.0.1 makes the victim's browser send requests to
//!    the daemon with `Host: evil.example`. Only the bound address (and,
//!    on loopback, `localhost`) or a name the user allowed is accepted; a
//!    request without `Host` is refused too.
//! 2. **Login**, when credentials are set: HTTP Basic auth, or the cookie
//!    `POST /api/v1/login` hands out. Secrets are compared in constant
//!    time.
//! 3. **CSRF**, for every method that changes state: a cross-site form can
//!    send neither Basic credentials of its own choosing nor a custom
//!    header, so the request must carry Basic auth or `X-Bittide-Csrf`.
//!    A browser caches Basic credentials and sends them cross-site too, so
//!    a request whose `Origin` (or `Sec-Fetch-Site`) says it came from
//!    another origin is refused whatever it carries. The rqbit dialect
//!    (`/rqbit/`, for Sonarr's "RQBit" client, which can send neither)
//!    also takes a write that carries no browser's `Origin` or
//!    `Sec-Fetch-Site`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::config::ApiConfig;
use crate::error::ApiError;

/// The header a script or the web UI sets to show the request is not a
/// cross-site form (a browser will not let another origin set it without
/// a CORS preflight, which this server never grants).
pub const CSRF_HEADER: &str = "x-bittide-csrf";

/// The login cookie's name.
pub const SESSION_COOKIE: &str = "bittide_session";

/// How long a login cookie stays valid.
const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Logins remembered at once; the oldest is forgotten beyond this, so
/// repeated logins cannot grow memory.
const MAX_SESSIONS: usize = 64;

/// Wrong passwords allowed in a row before logins are refused for a
/// while.
const FREE_FAILURES: u32 = 5;

/// The longest a run of wrong passwords locks logins out.
const MAX_LOCKOUT: Duration = Duration::from_secs(60);

/// The path that is reachable without a login (it hands out the cookie).
pub(crate) const LOGIN_PATH: &str = "/api/v1/login";

/// Where the protocols of other clients live (qBittorrent's WebAPI v2,
/// Transmission's RPC): they bring their own login and CSRF rules (the
/// `SID` cookie, `X-Transmission-Session-Id`), which the tools speaking
/// them expect to the letter. The guard checks `Host` and refuses
/// cross-origin writes there as everywhere; the protocol's module does
/// the rest with [`Guard::login`], [`Guard::token_ok`] and
/// [`Guard::basic_ok`].
pub(crate) const COMPAT_PREFIXES: [&str; 2] = ["/api/v2/", "/transmission/"];

/// What the checks need to know, shared by every request.
pub(crate) struct Guard {
    /// The address the listener is bound to (its real port, even when the
    /// configuration said 0).
    bound: SocketAddr,
    allowed_hosts: Vec<String>,
    credentials: Option<(String, String)>,
    sessions: Mutex<Vec<(String, Instant)>>,
    throttle: Mutex<Throttle>,
}

/// Recent wrong passwords, and until when logins are refused because of
/// them. After [`FREE_FAILURES`] each further one locks every login (the
/// cookie login, Basic auth, the compat protocols') out for twice as long
/// as the last, up to [`MAX_LOCKOUT`]: guessing a password at about one
/// try a minute is hopeless, and the owner waits a minute at most. A
/// failure is forgiven per [`FORGIVE_AFTER`] without one; a right password
/// forgives nothing, or a client that logs in correctly all the time
/// would reset the count for an attacker between its requests. It is one
/// counter for the server, not one per address: the protocols that log in
/// here do not all know the peer's address, and an attacker with many
/// addresses would get a counter each.
#[derive(Debug, Default)]
struct Throttle {
    failures: u32,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
}

/// How long without a wrong password forgives one.
const FORGIVE_AFTER: Duration = Duration::from_secs(60);

impl Throttle {
    /// How long logins stay refused, if they are now.
    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    fn failed(&mut self, now: Instant) {
        if let Some(last) = self.last_failure {
            let forgiven = (now - last).as_secs() / FORGIVE_AFTER.as_secs();
            self.failures = self
                .failures
                .saturating_sub(u32::try_from(forgiven).unwrap_or(u32::MAX));
        }
        self.last_failure = Some(now);
        self.failures = self.failures.saturating_add(1);
        if let Some(over) = self.failures.checked_sub(FREE_FAILURES) {
            let lock = Duration::from_secs(1u64 << over.min(6)).min(MAX_LOCKOUT);
            self.locked_until = Some(now + lock);
        }
    }
}

impl Guard {
    pub(crate) fn new(config: &ApiConfig, bound: SocketAddr) -> Guard {
        Guard {
            bound,
            allowed_hosts: config
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            credentials: config
                .credentials()
                .map(|(u, p)| (u.to_owned(), p.to_owned())),
            sessions: Mutex::new(Vec::new()),
            throttle: Mutex::new(Throttle::default()),
        }
    }

    /// Whether a login is required at all.
    pub(crate) fn requires_login(&self) -> bool {
        self.credentials.is_some()
    }

    /// Whether `host` (a `Host` header's value) names this server.
    pub(crate) fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        for allowed in &self.allowed_hosts {
            let with_port = match allowed.strip_prefix('[') {
                Some(v6) => v6.contains("]:"),
                None => allowed.contains(':'),
            };
            let matched = if with_port {
                *allowed == host
            } else {
                let bare = allowed.trim_start_matches('[').trim_end_matches(']');
                split_host(&host).is_some_and(|(name, _)| name == bare)
            };
            if matched {
                return true;
            }
        }
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        if port != self.bound.port() {
            return false;
        }
        let bound_ip = self.bound.ip();
        let local = bound_ip.is_loopback() || bound_ip.is_unspecified();
        match name.parse::<IpAddr>() {
            Ok(ip) => ip == bound_ip || bound_ip.is_unspecified() || (ip.is_loopback() && local),
            Err(_) => name == "localhost" && local,
        }
    }

    /// Whether the request carries valid Basic credentials.
    pub(crate) fn basic_ok(&self, headers: &HeaderMap) -> bool {
        let Some((user, pass)) = &self.credentials else {
            return false;
        };
        let Some((given_user, given_pass)) = basic_credentials(headers) else {
            return false;
        };
        self.check_password(user, pass, &given_user, &given_pass)
            .is_ok()
    }

    /// Compares a login attempt with the credentials, under the throttle:
    /// while logins are locked out nothing is compared.
    fn check_password(
        &self,
        user: &str,
        pass: &str,
        given_user: &str,
        given_pass: &str,
    ) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut throttle = lock(&self.throttle);
        if let Some(wait) = throttle.locked(now) {
            return Err(ApiError::TooManyAttempts(wait.as_secs().max(1)));
        }
        // Both comparisons always run, so timing says nothing about which
        // one failed.
        let user_ok = ct_eq(given_user.as_bytes(), user.as_bytes());
        let pass_ok = ct_eq(given_pass.as_bytes(), pass.as_bytes());
        if user_ok & pass_ok {
            Ok(())
        } else {
            throttle.failed(now);
            Err(ApiError::BadLogin)
        }
    }

    /// Whether the request carries a live login cookie.
    pub(crate) fn cookie_ok(&self, headers: &HeaderMap) -> bool {
        session_cookie(headers).is_some_and(|token| self.token_ok(&token))
    }

    /// Whether `token` is a live login (from [`Guard::login`]), whatever
    /// cookie carried it.
    pub(crate) fn token_ok(&self, token: &str) -> bool {
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|(_, expires)| *expires > now);
        let mut found = false;
        for (known, _) in sessions.iter() {
            found |= ct_eq(known.as_bytes(), token.as_bytes());
        }
        found
    }

    /// Checks a login attempt; on success, a new session token. Wrong
    /// passwords in a row lock logins out for a while
    /// ([`ApiError::TooManyAttempts`]).
    pub(crate) fn login(&self, user: &str, pass: &str) -> Result<Option<String>, ApiError> {
        let Some((want_user, want_pass)) = &self.credentials else {
            return Ok(None);
        };
        self.check_password(want_user, want_pass, user, pass)?;
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)
            .map_err(|_| ApiError::Internal("the system random generator failed"))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|(_, expires)| *expires > now);
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push((token.clone(), now + SESSION_LIFETIME));
        Ok(Some(token))
    }

    /// Forgets the session the request's cookie names.
    pub(crate) fn logout(&self, headers: &HeaderMap) {
        if let Some(token) = session_cookie(headers) {
            self.forget(&token);
        }
    }

    /// Forgets the login `token` (a compat protocol's logout).
    pub(crate) fn forget(&self, token: &str) {
        lock(&self.sessions).retain(|(known, _)| !ct_eq(known.as_bytes(), token.as_bytes()));
    }
}

/// The `Set-Cookie` value for a new login.
pub(crate) fn session_cookie_header(token: &str) -> HeaderValue {
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    // The token is hex and the rest is fixed text: always a valid value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that ends a login.
pub(crate) fn clear_cookie_header() -> HeaderValue {
    HeaderValue::from_static("bittide_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The middleware: Host, then login, then CSRF.
pub(crate) async fn check(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    // The web UI shows its own login form: a Basic challenge on its calls
    // would make the browser pop up its own dialog over it.
    let from_script = request.headers().contains_key(CSRF_HEADER);
    let mut response = match verdict(&guard, &request) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    };
    if from_script {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    // JSON is never to be sniffed into HTML or script by a browser.
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn verdict(guard: &Guard, request: &Request) -> Result<(), ApiError> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(ApiError::ForeignHost)?;
    if !guard.host_allowed(host) {
        return Err(ApiError::ForeignHost);
    }
    if let Some(authority) = request.uri().authority() {
        if !guard.host_allowed(authority.as_str()) {
            return Err(ApiError::ForeignHost);
        }
    }

    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    if COMPAT_PREFIXES.iter().any(|p| path.starts_with(p)) {
        if !safe && cross_origin(headers, host) {
            return Err(ApiError::CrossOrigin);
        }
        return Ok(());
    }

    // The web UI's page and assets hold no data: they load before the
    // login so that the page can show its login form.
    if safe && crate::web::is_public(path) {
        return Ok(());
    }

    let is_login = path == LOGIN_PATH;
    let basic = guard.basic_ok(headers);
    if guard.requires_login() && !is_login && !basic && !guard.cookie_ok(headers) {
        return Err(ApiError::Unauthorized);
    }

    if !safe {
        if cross_origin(headers, host) {
            return Err(ApiError::CrossOrigin);
        }
        let rqbit = path == crate::rqbit::PREFIX || path.starts_with("/rqbit/");
        let vouched = basic || headers.contains_key(CSRF_HEADER);
        if !vouched && (!rqbit || from_browser(headers)) {
            return Err(ApiError::CsrfRequired);
        }
    }
    Ok(())
}

/// Whether the request carries what every browser sends with a write
/// (`Origin` on every cross-origin POST since 2020, and the Fetch
/// Metadata `Sec-Fetch-Site`). The rqbit dialect's clients (Sonarr's
/// "RQBit") send neither and cannot send bittide's CSRF header; a
/// cross-site form always sends them, so a write without them did not come
/// from a web page.
fn from_browser(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN) || headers.contains_key("sec-fetch-site")
}

/// Whether a browser says the request comes from another origin.
pub(crate) fn cross_origin(headers: &HeaderMap, host: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match authority {
        Some(authority) => !authority.eq_ignore_ascii_case(host),
        // `null` (a sandboxed frame, a file: page) or anything else.
        None => true,
    }
}

/// Splits `name:port` / `[v6]:port` / `name` (port 80).
fn split_host(host: &str) -> Option<(&str, u16)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => 80,
            _ => after.strip_prefix(':')?.parse().ok()?,
        };
        return Some((ip, port));
    }
    match host.split_once(':') {
        Some((name, port)) => Some((name, port.parse().ok()?)),
        None => Some((host, 80)),
    }
}

/// `user:password` from an `Authorization: Basic` header (RFC 7617).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// The value of the login cookie, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Equality whose time depends only on the lengths, not on where the
/// inputs first differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the list inconsistent
    // (every change is one call), so a poisoned lock is used as is.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(bind: &str, allowed: &[&str]) -> Guard {
        let config = ApiConfig {
            allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
            ..ApiConfig::default()
        };
        Guard::new(&config, bind.parse().unwrap())
    }

    #[test]
    fn loopback_bind_accepts_its_own_names_only() {
        let g = guard("127.0.0.1:9850", &[]);
        for ok in [
            "127.0.0.1:9850",
            "localhost:9850",
            "LOCALHOST:9850",
            "[::1]:9850",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:9850",
            "127.0.0.1:80",
            "localhost",
            "127.0.0.1",
            "10.0.0.1:9850",
            "localhost.evil.example:9850",
            "[::1",
            "127.0.0.1:notaport",
            "",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn lan_bind_accepts_its_address_and_allowed_names() {
        let g = guard("192.168.1.5:9850", &["nas.local", "proxy.example:443"]);
        assert!(g.host_allowed("192.168.1.5:9850"));
        assert!(!g.host_allowed("localhost:9850"));
        assert!(!g.host_allowed("127.0.0.1:9850"));
        assert!(g.host_allowed("nas.local:9850"));
        assert!(g.host_allowed("NAS.local"));
        assert!(g.host_allowed("proxy.example:443"));
        assert!(!g.host_allowed("proxy.example:444"));
        assert!(!g.host_allowed("evil.example:9850"));
    }

    #[test]
    fn unspecified_bind_accepts_any_address_literal() {
        let g = guard("0.0.0.0:9850", &[]);
        assert!(g.host_allowed("192.168.1.5:9850"));
        assert!(g.host_allowed("localhost:9850"));
        assert!(!g.host_allowed("rebound.evil.example:9850"));
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
        assert!(!ct_eq(b"x", b""));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn basic_and_cookie_parsing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YWRtaW46czNjcjp0"), // admin:s3cr:t
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("admin".into(), "s3cr:t".into()))
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; bittide_session=abc123; c=d"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
    }

    #[test]
    fn logins_expire_from_a_bounded_list() {
        let config = ApiConfig {
            username: Some("u".into()),
            password: Some("p".into()),
            ..ApiConfig::default()
        };
        let g = Guard::new(&config, "127.0.0.1:1".parse().unwrap());
        assert!(matches!(g.login("u", "x"), Err(ApiError::BadLogin)));
        let first = g.login("u", "p").unwrap().unwrap();
        for _ in 0..MAX_SESSIONS {
            g.login("u", "p").unwrap();
        }
        let sessions = lock(&g.sessions);
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.iter().all(|(t, _)| *t != first));
    }

    #[test]
    fn wrong_passwords_in_a_row_lock_logins_out_for_longer_each_time() {
        let mut t = Throttle::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed(start);
            assert_eq!(t.locked(start), None);
        }
        t.failed(start);
        assert_eq!(t.locked(start), Some(Duration::from_secs(1)));
        t.failed(start);
        assert_eq!(t.locked(start), Some(Duration::from_secs(2)));
        for _ in 0..10 {
            t.failed(start);
        }
        assert_eq!(t.locked(start), Some(MAX_LOCKOUT));
        assert_eq!(t.locked(start + MAX_LOCKOUT), None);
        // Quiet for long enough forgives everything.
        let later = start + FORGIVE_AFTER * 20;
        t.failed(later);
        assert_eq!(t.locked(later), None);
    }

    #[test]
    fn a_locked_out_login_is_refused_even_with_the_right_password() {
        let config = ApiConfig {
            username: Some("u".into()),
            password: Some("p".into()),
            ..ApiConfig::default()
        };
        let g = Guard::new(&config, "127.0.0.1:1".parse().unwrap());
        for _ in 0..FREE_FAILURES {
            assert!(matches!(g.login("u", "x"), Err(ApiError::BadLogin)));
        }
        assert!(matches!(
            g.login("u", "p"),
            Err(ApiError::TooManyAttempts(1))
        ));
        let mut headers = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("u:p");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        );
        assert!(!g.basic_ok(&headers));
    }
}
