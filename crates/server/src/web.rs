//! The web page, compiled into the binary so an installation needs no files beside it.

use axum::response::{Html, IntoResponse, Response};

/// The map page.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
}

/// The page's script.
pub async fn script() -> Response {
    (
        [("content-type", "text/javascript; charset=utf-8")],
        include_str!("../web/app.js"),
    )
        .into_response()
}

/// The page's styles.
pub async fn style() -> Response {
    (
        [("content-type", "text/css; charset=utf-8")],
        include_str!("../web/app.css"),
    )
        .into_response()
}

/// The stop board page (`/board?stop=<stop_id>`), for displays and phones at a stop.
pub async fn board() -> Html<&'static str> {
    Html(include_str!("../web/board.html"))
}

/// The stop board's script.
pub async fn board_script() -> Response {
    (
        [("content-type", "text/javascript; charset=utf-8")],
        include_str!("../web/board.js"),
    )
        .into_response()
}

/// The citizens' complaint page: file with a map pin and a photo, and follow.
pub async fn complaints_page() -> Html<&'static str> {
    Html(include_str!("../web/complaints.html"))
}

/// The staff's complaint desk: queue, map, detail and updates.
pub async fn staff_page() -> Html<&'static str> {
    Html(include_str!("../web/staff.html"))
}

/// The script of both complaint pages.
pub async fn civic_script() -> Response {
    (
        [("content-type", "text/javascript; charset=utf-8")],
        include_str!("../web/civic.js"),
    )
        .into_response()
}
