//! The admin console: server-rendered pages for administrators and catalog roles (catalogs and
//! their resources, access packages, the policy editor, assignments, requests, connections,
//! separation of duties), beside My Access and built the same way (`crate::portal`'s viewer,
//! forms and rendering). Every page calls the same use cases as the Graph API with a capability
//! taken from the signed-in user's roles, so the console shows and changes exactly what the API
//! would let that user see and change.

mod assignments;
mod audit;
mod catalogs;
mod connections;
mod packages;
mod policies;
mod requests;
mod sod;

use askama::Template;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use steward_domain::role::Task;

use crate::AppState;
use crate::portal::{Layout, administers, message_page, page_viewer, render};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", axum::routing::get(index))
        .merge(catalogs::routes())
        .merge(packages::routes())
        .merge(policies::routes())
        .merge(assignments::routes())
        .merge(requests::routes())
        .merge(connections::routes())
        .merge(sod::routes())
        .merge(audit::routes())
}

/// One section of the console's start page.
struct Section {
    href: &'static str,
    title: &'static str,
    about: &'static str,
}

#[derive(Template)]
#[template(path = "console/index.html")]
struct IndexPage {
    layout: Layout,
    sections: Vec<Section>,
}

/// The console's start page: the sections the viewer's roles open.
async fn index(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(early) => return *early,
    };
    if !administers(&v.principal) {
        return message_page(
            axum::http::StatusCode::FORBIDDEN,
            "Not allowed",
            "The admin console is for administrators and catalog roles; you hold none.",
            Some(v.layout("admin")),
        );
    }
    let g = v.principal.grants();
    let mut sections = vec![Section {
        href: "/admin/catalogs",
        title: "Catalogs",
        about: "Catalogs, their resources and access packages.",
    }];
    if g.allows_somewhere(Task::ManageAssignments) {
        sections.push(Section {
            href: "/admin/assignments",
            title: "Assignments",
            about: "Who has which access package; assign directly, remove, export.",
        });
        sections.push(Section {
            href: "/admin/requests",
            title: "Requests",
            about: "Every request with its status and the reasons for it.",
        });
    }
    if g.allows_somewhere(Task::ManagePackages) {
        sections.push(Section {
            href: "/admin/separation-of-duties",
            title: "Separation of duties",
            about: "Incompatible packages and groups, and who holds both.",
        });
    }
    if g.is_administrator() {
        sections.push(Section {
            href: "/admin/connections",
            title: "Connections",
            about: "The systems Steward delivers access into: test them, discover their resources.",
        });
        sections.push(Section { href: "/admin/audit", title: "Audit trail", about: "What was changed, by whom." });
    }
    render(axum::http::StatusCode::OK, &IndexPage { layout: v.layout("admin"), sections })
}
