//! The one table of which role each route of the admin API needs ([`ROUTES`]), and the lookup
//! the access layer makes ([`required_role`]).
//!
//! Reads need `viewer`; steering work (backfills, batches, control, chain fleet settings) needs
//! `operator`; keys, the audit log, chain registration, endpoint changes and raw configuration
//! need `admin`. A `/v1` route missing from the table needs `admin` (and is logged), and a unit
//! test fails for every route registered in `api/` that the table does not list, so a new route
//! cannot slip through unguarded.

use axum::http::Method;
use blockfill_activities::store::api_keys::AccessRole::{self, Admin, Operator, Viewer};

/// The role one route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    /// HTTP method (`HEAD` is looked up as `GET`).
    pub method: &'static str,
    /// The route template as registered (`/v1/backfills/{id}/pause`).
    pub route: &'static str,
    /// The role it needs.
    pub role: AccessRole,
    /// A top-level field of the JSON body that raises the need to `admin` (a chain change
    /// that replaces its endpoints).
    pub admin_if_body_has: Option<&'static str>,
}

const fn rule(method: &'static str, route: &'static str, role: AccessRole) -> RouteRule {
    RouteRule {
        method,
        route,
        role,
        admin_if_body_has: None,
    }
}

/// Probe routes: open unless `--protect-probes` (then `viewer`).
pub const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Every `/v1` route and the role it needs. Routes still to land on other branches (control,
/// raw configuration) are listed so they are guarded the moment they exist.
pub const ROUTES: &[RouteRule] = &[
    // Chains.
    rule("GET", "/v1/chains", Viewer),
    rule("POST", "/v1/chains", Admin),
    rule("GET", "/v1/chains/{name}", Viewer),
    RouteRule {
        admin_if_body_has: Some("rpc_urls"),
        ..rule("PATCH", "/v1/chains/{name}", Operator)
    },
    rule("GET", "/v1/chains/{name}/config", Admin),
    rule("GET", "/v1/chains/{name}/endpoints", Viewer),
    rule("GET", "/v1/chains/{name}/status", Viewer),
    rule("GET", "/v1/chains/{name}/gaps", Viewer),
    rule("GET", "/v1/chains/{name}/reorgs", Viewer),
    rule("GET", "/v1/chains/{name}/fleet", Viewer),
    rule("POST", "/v1/chains/{name}/live/resume", Operator),
    // Backfills and their control.
    rule("GET", "/v1/backfills", Viewer),
    rule("POST", "/v1/backfills", Operator),
    rule("GET", "/v1/backfills/{id}", Viewer),
    rule("GET", "/v1/backfills/{id}/progress", Viewer),
    rule("PATCH", "/v1/backfills/{id}", Operator),
    rule("POST", "/v1/backfills/{id}/pause", Operator),
    rule("POST", "/v1/backfills/{id}/resume", Operator),
    rule("POST", "/v1/backfills/{id}/cancel", Operator),
    rule("POST", "/v1/backfills/{id}/retry-failed", Operator),
    // Batches.
    rule("GET", "/v1/batches", Viewer),
    rule("GET", "/v1/batches/{id}", Viewer),
    rule("POST", "/v1/batches/{id}/retry", Operator),
    rule("GET", "/v1/quarantine", Viewer),
    // The installation.
    rule("GET", "/v1/orchestrator", Viewer),
    rule("GET", "/v1/workers", Viewer),
    rule("GET", "/v1/fleet/supervisor", Viewer),
    // Access.
    rule("GET", "/v1/whoami", Viewer),
    rule("GET", "/v1/keys", Admin),
    rule("POST", "/v1/keys", Admin),
    rule("DELETE", "/v1/keys/{id}", Admin),
    rule("GET", "/v1/audit", Admin),
];

/// The rule of `method` on `route`, if the table lists it.
pub fn rule_for(method: &Method, route: &str) -> Option<&'static RouteRule> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|r| r.method == method && r.route == route)
}

/// The table's route template that `path` fits (`{param}` segments match any one segment),
/// for a request no registered route matched: a listed route that is not served (yet) still
/// needs its role.
pub fn template_for(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES.iter().map(|r| r.route).find(|route| {
        let parts: Vec<&str> = route.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(part, segment)| {
                part == segment || (part.starts_with('{') && !segment.is_empty())
            })
    })
}

/// The role a request needs: its route's rule (raised to `admin` by a body field that says so),
/// `viewer` for a path no route matched (the answer is a 404), `admin` for a matched route the
/// table does not list (logged: it should be added).
pub fn required_role(method: &Method, route: Option<&str>, body: &[u8]) -> AccessRole {
    let Some(route) = route else {
        return Viewer;
    };
    if PROBES.contains(&route) {
        return Viewer;
    }
    match rule_for(method, route) {
        Some(rule) => match rule.admin_if_body_has {
            Some(field) if body_has(body, field) => Admin,
            _ => rule.role,
        },
        None => {
            tracing::warn!(target: "blockfill::api", %method, route, "route missing from the access table; it needs admin");
            Admin
        }
    }
}

/// Whether `body` is a JSON object with top-level field `field`.
fn body_has(body: &[u8], field: &str) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .is_ok_and(|object| object.contains_key(field))
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, path::Path};

    use super::*;

    /// The `(METHOD, "/path")` pairs registered in the `.rs` files under `dir`: from
    /// `.route("/path", get(..).post(..))` calls and from `#[utoipa::path(get, path = "/path")]`
    /// attributes; only `/v1` and probe paths.
    fn registered_routes(dir: &Path, found: &mut BTreeSet<(String, String)>) {
        let entries = std::fs::read_dir(dir).expect("the api sources are readable");
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                registered_routes(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs")
                // This file's own tests hold sample registrations.
                && !path.ends_with("access/routes.rs")
            {
                let source = std::fs::read_to_string(&path).expect("a source file");
                scan_route_calls(&source, found);
                scan_utoipa_paths(&source, found);
            }
        }
    }

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    fn guarded(path: &str) -> bool {
        path.starts_with("/v1") || PROBES.contains(&path)
    }

    /// The first string literal of `text` (after whitespace) and the rest after it.
    fn leading_literal(text: &str) -> Option<(&str, &str)> {
        let text = text.trim_start().strip_prefix('"')?;
        let end = text.find('"')?;
        Some((&text[..end], &text[end + 1..]))
    }

    /// `text` up to the `)` that closes an already open parenthesis.
    fn until_close(text: &str) -> &str {
        let mut depth = 1_i32;
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[..i];
                    }
                }
                _ => {}
            }
        }
        text
    }

    fn scan_route_calls(source: &str, found: &mut BTreeSet<(String, String)>) {
        for (at, _) in source.match_indices(".route(") {
            let rest = &source[at + ".route(".len()..];
            let Some((path, rest)) = leading_literal(rest) else {
                continue;
            };
            if !guarded(path) {
                continue;
            }
            let methods = until_close(rest);
            for method in METHODS {
                let called = methods.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !methods[..i]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if called {
                    found.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
    }

    fn scan_utoipa_paths(source: &str, found: &mut BTreeSet<(String, String)>) {
        for (at, _) in source.match_indices("utoipa::path(") {
            let args = until_close(&source[at + "utoipa::path(".len()..]);
            let method = args
                .split(|c: char| c == ',' || c.is_whitespace())
                .find(|word| !word.is_empty())
                .unwrap_or_default()
                .to_lowercase();
            let Some(path_at) = args.find("path") else {
                continue;
            };
            let after = args[path_at + "path".len()..].trim_start();
            let Some((path, _)) = after.strip_prefix('=').and_then(leading_literal) else {
                continue;
            };
            if METHODS.contains(&method.as_str()) && guarded(path) {
                found.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }

    #[test]
    fn every_registered_route_is_in_the_table() {
        let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut found = BTreeSet::new();
        registered_routes(&api, &mut found);
        assert!(
            found.len() >= 25,
            "the scan found too few routes to be working: {found:?}"
        );
        let missing: Vec<_> = found
            .iter()
            .filter(|(method, path)| {
                !PROBES.contains(&path.as_str())
                    && rule_for(
                        &Method::from_bytes(method.as_bytes()).expect("a method"),
                        path,
                    )
                    .is_none()
            })
            .collect();
        assert!(
            missing.is_empty(),
            "routes without a role in api/access/routes.rs ROUTES: {missing:?}"
        );
    }

    #[test]
    fn the_scan_reads_both_registration_forms() {
        let mut found = BTreeSet::new();
        scan_route_calls(
            r#"Router::new().route("/v1/x/{id}", get(show).post(create)).route("/ui", get(ui))
               .route(
                   "/v1/y",
                   delete(drop_it),
               )"#,
            &mut found,
        );
        scan_utoipa_paths(
            r#"#[utoipa::path(patch, path = "/v1/z", responses((status = 200)))]"#,
            &mut found,
        );
        let expected: BTreeSet<(String, String)> = [
            ("GET", "/v1/x/{id}"),
            ("POST", "/v1/x/{id}"),
            ("DELETE", "/v1/y"),
            ("PATCH", "/v1/z"),
        ]
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn roles_follow_the_contract() {
        let role = |method: Method, route: &str, body: &str| {
            required_role(&method, Some(route), body.as_bytes())
        };
        assert_eq!(role(Method::GET, "/v1/chains", ""), Viewer);
        assert_eq!(role(Method::HEAD, "/v1/chains", ""), Viewer);
        assert_eq!(role(Method::POST, "/v1/chains", "{}"), Admin);
        assert_eq!(role(Method::POST, "/v1/backfills", "{}"), Operator);
        assert_eq!(
            role(Method::PATCH, "/v1/chains/{name}", r#"{"max_workers": 3}"#),
            Operator
        );
        assert_eq!(
            role(
                Method::PATCH,
                "/v1/chains/{name}",
                r#"{"rpc_urls": ["http://x"]}"#
            ),
            Admin
        );
        assert_eq!(role(Method::GET, "/v1/chains/{name}/config", ""), Admin);
        assert_eq!(role(Method::GET, "/v1/audit", ""), Admin);
        assert_eq!(
            role(Method::DELETE, "/v1/chains", ""),
            Admin,
            "unlisted: admin"
        );
        assert_eq!(
            required_role(&Method::GET, None, b""),
            Viewer,
            "no route: 404"
        );
    }

    #[test]
    fn paths_fit_the_tables_templates() {
        assert_eq!(
            template_for("/v1/backfills/0191/pause"),
            Some("/v1/backfills/{id}/pause")
        );
        assert_eq!(
            template_for("/v1/backfills/0191"),
            Some("/v1/backfills/{id}")
        );
        assert_eq!(template_for("/v1/backfills"), Some("/v1/backfills"));
        assert_eq!(template_for("/v1/backfills//pause"), None);
        assert_eq!(template_for("/v1/nothing"), None);
    }
}
