//! `snap ui`: the web interface, and the service that runs automatic
//! backups. One binary gives the CLI and this; both call the same engine
//! functions and show the same reports.
//!
//! The server listens on 127.0.0.1 (a free port unless `--listen` names
//! one) and prints its address, under a host name of its own
//! (`snap-….localhost`, see `app::own_name`), with a random token as the
//! first line on stdout. Pages are rendered on the server ([`pages`]); a small script
//! ([`assets`]) sends the forms, shows live progress over server-sent
//! events and asks before anything is deleted. Every engine call runs on a
//! thread of its own ([`app::blocking`]), so a slow bucket never stalls the
//! pages, and one long task (backup, restore, prune, check) runs at a time
//! ([`jobs`]), which the schedule ([`schedule`]) shares.

mod actions;
mod api;
mod app;
mod assets;
mod config_store;
mod folders;
mod guard;
mod jobs;
mod pages;
mod schedule;
mod views;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::{get, post};

use crate::args::{Global, UiArgs};
use app::App;

/// `snap ui`.
pub(crate) fn serve(g: &Global, a: &UiArgs) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the web server's runtime")?;
    rt.block_on(run(g.clone(), a))?;
    Ok(0)
}

async fn run(g: Global, a: &UiArgs) -> Result<()> {
    let listen = a
        .listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: listening on {addr}, which other machines may reach: anyone who has the \
             address with its token can read and delete your backups. Requests must name {addr} \
             as their host; a browser also sends the token's cookie to any other server it \
             visits at {}",
            addr.ip()
        );
    }
    let app = Arc::new(App::new(g, addr, a.keep_token, a.new_token)?);
    let url = app.url();
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}").context("cannot write to standard output")?;
        out.flush()?;
    }
    app.log(&format!("serving on {addr}"));
    // Kept until the server stops: the browser may read it late.
    let _opener = if a.no_open {
        None
    } else {
        open_browser(&app, &url)
    };
    tokio::spawn(schedule::supervise(app.clone()));
    let stop = app.clone();
    let serving = axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.stopping.send_replace(true);
        })
        .into_future();
    // Pages still loading get a few seconds after Ctrl-C, not forever.
    let mut stopped = app.stopping.subscribe();
    tokio::select! {
        r = serving => r.context("the web server stopped")?,
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        } => app.log("stopped without waiting longer for open requests"),
    }
    Ok(())
}

/// Opens the page in the browser through a file readable by this user
/// alone that redirects to the address: given to the browser directly,
/// the token stood in the process list for every local user to read.
fn open_browser(app: &App, url: &str) -> Option<tempfile::NamedTempFile> {
    let opened = (|| -> Result<tempfile::NamedTempFile> {
        let mut file = tempfile::Builder::new()
            .prefix("snap-ui-")
            .suffix(".html")
            .tempfile()?;
        use std::io::Write;
        write!(
            file,
            "<!DOCTYPE html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" \
             content=\"0;url={url}\"><title>snap</title><a href=\"{url}\">Open snap</a>"
        )?;
        file.flush()?;
        webbrowser::open(&file.path().display().to_string())?;
        Ok(file)
    })();
    match opened {
        Ok(f) => Some(f),
        Err(e) => {
            app.log(&format!(
                "could not open a browser ({e:#}); open the address above"
            ));
            None
        }
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/manage", get(pages::manage))
        .route("/backup", get(pages::backup))
        .route("/browse", get(pages::browse))
        .route("/diff", get(pages::diff))
        .route("/schedule", get(pages::schedule))
        .route("/check", get(pages::check))
        .route("/settings", get(pages::settings))
        .route("/part/stats", get(pages::stats_part))
        .route("/part/snapshots", get(pages::snapshots_part))
        .route("/assets/app.js", get(assets::script))
        .route("/assets/app.css", get(assets::style))
        .route("/api/snapshots", get(api::snapshots))
        .route("/api/stats", get(api::stats))
        .route("/api/ls", get(api::ls))
        .route("/api/diff", get(api::diff))
        .route("/api/download", get(api::download))
        .route("/api/status", get(api::status))
        .route("/api/profiles", get(api::profiles))
        .route("/api/folders", get(folders::folders))
        .route("/api/events", get(api::events))
        .route("/api/profile/use", post(actions::use_profile))
        .route("/api/settings", post(actions::save_settings))
        .route("/api/connection", post(actions::check_connection))
        .route("/api/init", post(actions::init))
        .route("/api/connect", post(actions::connect))
        .route("/api/relocate", post(actions::relocate))
        .route("/api/password", post(actions::password))
        .route("/api/backup", post(actions::backup))
        .route("/api/forget", post(actions::forget))
        .route("/api/keep", post(actions::keep))
        .route("/api/prune", post(actions::prune))
        .route("/api/restore", post(actions::restore))
        .route("/api/undo", post(actions::undo))
        .route("/api/schedule", post(actions::schedule))
        .route("/api/check", post(actions::check))
        .route("/api/cancel", post(actions::cancel))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::guard,
        ))
        .with_state(app)
}
