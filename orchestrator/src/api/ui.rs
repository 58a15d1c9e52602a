//! The dashboard: `admin-ui/` embedded in the binary, served at `/` (the page, its stylesheet,
//! its ES modules: `app.js` and `js/*.js`, and the vendored chart library in `vendor/`).

use axum::{Router, http::header, response::IntoResponse, routing::get};

use super::ApiContext;

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file of the dashboard: path, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../../admin-ui/index.html")),
    (
        "/style.css",
        CSS,
        include_str!("../../../admin-ui/style.css"),
    ),
    (
        "/app.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/app.js"),
    ),
    (
        "/js/config.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/config.js"),
    ),
    (
        "/js/format.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/format.js"),
    ),
    (
        "/js/dom.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/dom.js"),
    ),
    (
        "/js/network.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/network.js"),
    ),
    (
        "/js/selection.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/selection.js"),
    ),
    (
        "/js/derived.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/derived.js"),
    ),
    (
        "/js/render.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/render.js"),
    ),
    (
        "/js/endpoints.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/endpoints.js"),
    ),
    (
        "/js/form.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/form.js"),
    ),
    (
        "/js/fleet.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/fleet.js"),
    ),
    (
        "/js/auth.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/auth.js"),
    ),
    (
        "/js/keyprompt.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/keyprompt.js"),
    ),
    (
        "/js/controls.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/controls.js"),
    ),
    (
        "/js/chart.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/chart.js"),
    ),
    (
        "/js/detail.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/detail.js"),
    ),
    (
        "/js/gapmap.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/js/gapmap.js"),
    ),
    // uPlot 1.6.32 (MIT, admin-ui/vendor/uPlot.LICENSE): the detail panel's chart.
    (
        "/vendor/uPlot.iife.min.js",
        JAVASCRIPT,
        include_str!("../../../admin-ui/vendor/uPlot.iife.min.js"),
    ),
    (
        "/vendor/uPlot.min.css",
        CSS,
        include_str!("../../../admin-ui/vendor/uPlot.min.css"),
    ),
];

pub(super) fn router() -> Router<ApiContext> {
    let mut router = Router::new();
    for &(path, content_type, body) in FILES {
        router = router.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) }),
        );
    }
    router.route(
        "/favicon.ico",
        get(|| async { axum::http::StatusCode::NO_CONTENT.into_response() }),
    )
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// Every module in `admin-ui/js/` is embedded (a new one needs a line in `FILES`).
    #[test]
    fn every_module_file_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../admin-ui/js");
        for entry in std::fs::read_dir(&dir).expect("admin-ui/js") {
            let name = entry.expect("a directory entry").file_name();
            let path = format!("/js/{}", name.to_string_lossy());
            assert!(
                FILES.iter().any(|(p, _, _)| *p == path),
                "{path} is not served: add it to FILES"
            );
        }
    }

    /// Every script and stylesheet the page loads is embedded (the vendored chart included).
    #[test]
    fn every_asset_the_page_loads_is_served() {
        let (_, _, page) = FILES.iter().find(|(p, _, _)| *p == "/").expect("the page");
        let mut found = 0;
        for attr in ["src=\"", "href=\""] {
            for (_, rest) in page
                .match_indices(attr)
                .map(|(i, _)| page.split_at(i + attr.len()))
            {
                let target = rest.split('"').next().unwrap_or_default();
                if target.starts_with("http") || target.starts_with('#') {
                    continue;
                }
                found += 1;
                let path = format!("/{}", target.trim_start_matches("./"));
                assert!(
                    FILES.iter().any(|(p, _, _)| *p == path),
                    "the page loads {target}, which is not served"
                );
            }
        }
        assert!(found >= 4, "the page's scripts and stylesheets were found");
    }

    /// Every module an embedded script imports is embedded too.
    #[test]
    fn every_imported_module_is_served() {
        for (path, _, body) in FILES.iter().filter(|(p, _, _)| p.ends_with(".js")) {
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit_once("from '")
                    .and_then(|(_, rest)| rest.strip_suffix("';"))
                    .unwrap_or_else(|| panic!("{path}: unexpected import line {line}"));
                let resolved = format!("{dir}/{}", target.trim_start_matches("./"));
                assert!(
                    FILES.iter().any(|(p, _, _)| *p == resolved),
                    "{path} imports {target} ({resolved}), which is not served"
                );
            }
        }
    }
}
