//! [`redact_url`]: how every URL (RPC endpoint, Redis, PostgreSQL) appears in errors, logs,
//! metrics labels and the API, without the secrets people put in URLs.

/// Database-style schemes: their user name is a role and their path names a database.
const DATABASE_SCHEMES: [&str; 4] = ["postgres", "postgresql", "redis", "rediss"];

/// `url` as messages, logs and metrics show it: never a password, and never a path, query or
/// fragment that might hold an API key (providers put keys in all three).
///
/// - Kept: the scheme, the host and the port.
/// - The password becomes `***`; the user name is kept in front of it (`user:***@`). A user part
///   *without* a password is kept only on PostgreSQL URLs, where it is the role
///   (`postgres://postgres@host/db`); elsewhere it may itself be the secret
///   (`https://KEY@rpc.example`, `redis://PASSWORD@host`) and shows as `***@`.
/// - On database-style URLs (`postgres`, `postgresql`, `redis`, `rediss`) a path of one plain
///   name (ASCII letters, digits, `_`, `-`; at most 63) is kept: the database or the Redis
///   database number. Any other path, and any query or fragment, is replaced: by `/…` when the
///   path is not kept (`https://rpc.example/v2/KEY` -> `https://rpc.example/…`), by `?…` after
///   a kept database name (`postgres://u@h/db?sslmode=require` -> `postgres://u@h/db?…`).
/// - A URL that does not parse is shown as `<unparsable URL>`: it may hold anything.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "<unparsable URL>".to_owned();
    };
    let scheme = parsed.scheme();
    let database = DATABASE_SCHEMES.contains(&scheme);
    let mut out = format!("{scheme}://");
    match (parsed.username(), parsed.password()) {
        ("", None) => {}
        (user, Some(_)) => out.push_str(&format!("{user}:***@")),
        (user, None) if scheme.starts_with("postgres") => out.push_str(&format!("{user}@")),
        (_, None) => out.push_str("***@"),
    }
    out.push_str(parsed.host_str().unwrap_or(""));
    if let Some(port) = parsed.port() {
        out.push_str(&format!(":{port}"));
    }
    let path = parsed.path();
    let trailing = parsed.query().is_some() || parsed.fragment().is_some();
    let name = path.strip_prefix('/').unwrap_or(path);
    let plain_name = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if database && plain_name {
        out.push('/');
        out.push_str(name);
        if trailing {
            out.push_str("?…");
        }
    } else if !name.is_empty() || trailing {
        out.push_str("/…");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn endpoint_labels_keep_scheme_host_and_port_and_hide_keys() {
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redact_url("http://127.0.0.1:8545/"),
            "http://127.0.0.1:8545"
        );
        assert_eq!(
            redact_url("https://eth-mainnet.example/v2/SECRETKEY"),
            "https://eth-mainnet.example/…"
        );
        // One plain path segment is a key on an RPC URL (not a database name).
        assert_eq!(
            redact_url("https://nd-123.example.com/SECRETKEY"),
            "https://nd-123.example.com/…"
        );
        assert_eq!(
            redact_url("https://rpc.example/?apikey=SECRET"),
            "https://rpc.example/…"
        );
        assert_eq!(
            redact_url("https://rpc.example#SECRET"),
            "https://rpc.example/…"
        );
        assert_eq!(redact_url("ws://[::1]:8546"), "ws://[::1]:8546");
        assert_eq!(redact_url("not a url"), "<unparsable URL>");
    }

    #[test]
    fn passwords_are_hidden_and_user_names_kept() {
        assert_eq!(
            redact_url("https://user:pw@rpc.example"),
            "https://user:***@rpc.example"
        );
        assert_eq!(
            redact_url("https://:SECRET@rpc.example/v3/PROJECT"),
            "https://:***@rpc.example/…"
        );
        // A lone user part of an RPC or Redis URL may be the secret itself.
        assert_eq!(
            redact_url("https://SECRETKEY@rpc.example"),
            "https://***@rpc.example"
        );
        for url in [
            "https://user:pw@rpc.example/v2/KEY?apikey=KEY2#KEY3",
            "https://SECRETKEY@rpc.example",
            "redis://token@host",
            "postgres://me:pw@host/db?password=pw2",
        ] {
            let shown = redact_url(url);
            for secret in ["pw", "KEY", "token", "SECRET"] {
                assert!(!shown.contains(secret), "{url} -> {shown}");
            }
        }
    }

    #[test]
    fn redis_urls_hide_the_password_and_keep_the_database_number() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:pw@host/1"),
            "rediss://user:***@host/1"
        );
        assert_eq!(redact_url("redis://token@host"), "redis://***@host");
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:1"),
            "redis://:***@127.0.0.1:1"
        );
    }

    #[test]
    fn postgres_urls_keep_the_role_and_a_plain_database_name() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/blockfill"),
            "postgres://postgres@127.0.0.1:5432/blockfill"
        );
        assert_eq!(
            redact_url("postgresql://app:hunter2@db.internal/bf_test_0123abcd"),
            "postgresql://app:***@db.internal/bf_test_0123abcd"
        );
        assert_eq!(
            redact_url("postgres://app@db/blockfill?sslmode=require&password=x"),
            "postgres://app@db/blockfill?…"
        );
        // Not a plain name: hidden.
        assert_eq!(redact_url("postgres://app@db/a/b"), "postgres://app@db/…");
        assert_eq!(
            redact_url("postgres://app@db/it%27s"),
            "postgres://app@db/…"
        );
        assert_eq!(
            redact_url("postgres://app@db/?password=x"),
            "postgres://app@db/…"
        );
    }
}
