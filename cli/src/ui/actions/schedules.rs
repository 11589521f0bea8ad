//! The schedule of a profile.

use super::*;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ScheduleForm {
    profile: String,
    interval: String,
    keep_last: String,
    /// "Skip when nothing changed"; left as saved when not sent.
    skip_unchanged: Option<bool>,
    /// Refused: the page never sets a command (see
    /// [`views::on_failure_how`]); here to say so, not ignore it.
    on_failure: String,
}

pub(crate) async fn schedule(State(app): State<Arc<App>>, Json(f): Json<ScheduleForm>) -> Answer {
    if some(&f.on_failure).is_some() {
        return failed(
            &app,
            StatusCode::BAD_REQUEST,
            format!(
                "a failure command is set from the terminal only, not from this page: {}",
                views::on_failure_how(&f.profile)
            ),
        );
    }
    if schedule::interval_seconds(&f.interval).is_none() {
        return failed(
            &app,
            StatusCode::BAD_REQUEST,
            format!("{:?} is not one of the intervals offered", f.interval),
        );
    }
    let keep: u32 = match f.keep_last.parse() {
        Ok(k) if schedule::KEEP.contains(&k) => k,
        _ => {
            return failed(
                &app,
                StatusCode::BAD_REQUEST,
                format!("{:?} is not one of the numbers offered", f.keep_last),
            );
        }
    };
    let r = (|| -> anyhow::Result<()> {
        let _one = lock(&app.config_write);
        let mut file: ConfigFile = app.config()?;
        let p = file
            .profiles
            .get_mut(&f.profile)
            .ok_or_else(|| anyhow::anyhow!("there is no profile {:?}", f.profile))?;
        p.schedule = Some(f.interval.clone());
        p.keep_last = (keep > 0).then_some(keep);
        if let Some(skip) = f.skip_unchanged {
            p.skip_if_unchanged = Some(skip);
        }
        app.save_config(&file)?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            app.log(&format!(
                "profile {}: schedule {}, keep {}",
                f.profile, f.interval, keep
            ));
            schedule::refresh(&app);
            let mut msg = format!("saved the schedule of profile {}", f.profile);
            let unattended = app
                .session(&Which::Named(f.profile.clone()))
                .is_ok_and(|s| crate::password::is_configured(s.global(), &s.profile));
            if f.interval != "off" && !unattended {
                msg.push_str(
                    ". Note: its repository password is only typed into this page, which forgets \
                     it when snap ui stops; until it is typed again, automatic backups cannot \
                     run. To have them run by themselves, choose a password file or command in \
                     Settings",
                );
            }
            reloading(done(msg))
        }
        Err(e) => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
    }
}
