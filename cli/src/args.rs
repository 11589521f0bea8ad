//! Command-line arguments. Names follow restic where a restic user would
//! look for them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use snap_engine::commands::check;

#[derive(Parser, Debug)]
#[command(
    name = "snap",
    version,
    about = "Deduplicating, encrypted backups to S3-compatible buckets and local directories",
    after_help = "Exit codes:\n  \
                  0  success\n  \
                  1  error\n  \
                  2  the command line cannot be parsed (an unknown option, a missing argument)\n  \
                  3  snapshot written, but some files could not be read or changed while read;\n     \
                  or restored, but the target refused some extended attributes\n  \
                  10 no repository\n  \
                  11 locked by another command (try again later)\n  \
                  12 wrong password"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Repository: a directory, or s3://BUCKET[/ROOT/PATH] [env: SNAP_REPOSITORY].
    /// Default: the default profile's, else a local repository in your data directory
    #[arg(short = 'r', long, global = true, value_name = "REPO")]
    pub repo: Option<String>,

    /// Read the password from the first line of FILE [env: SNAP_PASSWORD_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Run CMD with the shell and use the first line it prints as the password
    /// [env: SNAP_PASSWORD_COMMAND]
    #[arg(long, global = true, value_name = "CMD")]
    pub password_command: Option<String>,

    /// Unlock with this key file alone (an id or unique prefix, as a
    /// wrong-password error lists them): for a repository where storage
    /// planted key files that crowd yours out
    #[arg(long, global = true, value_name = "ID")]
    pub key: Option<String>,

    /// Directory for local caches [env: SNAP_CACHE_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not use or fill the local cache
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Use a repository made with `init --no-encryption`. Such a repository
    /// gives up confidentiality and integrity: whoever can read the storage
    /// reads your files, and whoever can write it can change them, and
    /// restore then applies no owners, set-id bits or device files. Without
    /// this flag snap refuses it, so storage cannot switch encryption off
    #[arg(long, global = true)]
    pub insecure_no_encryption: bool,

    /// Use the named profile from the config file for settings not given
    /// otherwise [env: SNAP_PROFILE]. Default: the profile set with
    /// `snap config --default NAME`
    #[arg(short = 'P', long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// S3 endpoint URL, such as https://s3.example.com or http://127.0.0.1:3900;
    /// none means AWS [env: AWS_ENDPOINT_URL]
    #[arg(long, global = true, value_name = "URL", help_heading = "S3")]
    pub endpoint: Option<String>,

    /// S3 region ("auto" for Cloudflare R2) [env: AWS_REGION, AWS_DEFAULT_REGION].
    /// Default: us-east-1
    #[arg(long, global = true, value_name = "REGION", help_heading = "S3")]
    pub region: Option<String>,

    /// Bucket addressing: auto, path or virtual
    #[arg(long, global = true, value_name = "STYLE", help_heading = "S3")]
    pub s3_addressing: Option<String>,

    /// Access key id [env: AWS_ACCESS_KEY_ID]
    #[arg(long, global = true, value_name = "ID", help_heading = "S3")]
    pub access_key_id: Option<String>,

    /// Secret access key [env: AWS_SECRET_ACCESS_KEY]. Discouraged on the
    /// command line, where other users can see it: use the variable or a profile
    #[arg(long, global = true, value_name = "SECRET", help_heading = "S3")]
    pub secret_access_key: Option<String>,

    /// Parallel transfers to the bucket
    #[arg(long, global = true, value_name = "N", help_heading = "S3")]
    pub connections: Option<usize>,

    /// Delete objects one by one from the start (snap falls back to this by itself where a provider lacks multi-object delete)
    #[arg(long, global = true, help_heading = "S3")]
    pub no_bulk_delete: bool,

    /// Read the repository as it stood at TIME, from the bucket's object
    /// versions (a versioned S3 bucket): for snapshots, ls, restore and
    /// other commands that only read. TIME is RFC 3339
    /// (2026-12-03T17:00:00Z, or with an offset) or "YYYY-MM-DD HH:MM[:SS]"
    /// in local time
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_as_of)]
    pub as_of: Option<i64>,

    /// Print results as JSON on standard output
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Say what is happening, per file with -v
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The ids of the options given on the command line, not taken from
    /// the environment: `snap config` saves only those, and S3 options
    /// given beside a local repository are refused.
    #[arg(skip)]
    pub from_command_line: Vec<String>,

    /// The options read from the environment, with their variables.
    #[arg(skip)]
    pub from_environment: Vec<(String, &'static str)>,
}

/// `--as-of`'s TIME as Unix nanoseconds.
fn parse_as_of(s: &str) -> Result<i64, String> {
    use chrono::TimeZone;
    let bad = || {
        format!(
            "{s:?} is not a time: give RFC 3339 (2026-12-03T17:00:00Z) or \
             \"YYYY-MM-DD HH:MM[:SS]\" in local time"
        )
    };
    let t = match chrono::DateTime::parse_from_rfc3339(s.trim()) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => {
            let naive = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(s.trim(), f).ok())
                .ok_or_else(bad)?;
            chrono::Local
                .from_local_datetime(&naive)
                .earliest()
                .ok_or_else(bad)?
                .with_timezone(&chrono::Utc)
        }
    };
    t.timestamp_nanos_opt().ok_or_else(bad)
}

/// Where a setting came from, as `snap config` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    Profile(String),
    Environment(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::CommandLine => f.write_str("command line"),
            Source::Profile(name) => write!(f, "profile {name}"),
            Source::Environment(var) => write!(f, "environment {var}"),
        }
    }
}

impl Global {
    pub fn given_on_command_line(&self, id: &str) -> bool {
        self.from_command_line.iter().any(|i| i == id)
    }

    /// Where the option's own value came from: the command line, an
    /// environment variable, or nowhere (None).
    pub fn source(&self, id: &str) -> Option<Source> {
        if self.given_on_command_line(id) {
            return Some(Source::CommandLine);
        }
        self.from_environment
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, var)| Source::Environment(var))
    }

    /// Fills the options not given on the command line from their
    /// variables. Done here rather than by clap's `env`, which listed
    /// `--access-key-id <ID> --secret-access-key <SECRET>` in the usage
    /// line of every mistake as if they were required, once the AWS
    /// variables were set. Empty AWS variables count as unset (other tools
    /// leave them so); an empty SNAP_* one is kept, to be refused by name.
    fn read_environment(&mut self) {
        let var = |name: &'static str, keep_empty: bool| {
            std::env::var(name)
                .ok()
                .filter(|v| keep_empty || !v.is_empty())
                .map(|v| (v, name))
        };
        let mut noted = Vec::new();
        macro_rules! fill {
            ($field:ident, $var:literal, $keep_empty:expr) => {
                if self.$field.is_none()
                    && let Some((v, name)) = var($var, $keep_empty)
                {
                    self.$field = Some(v.into());
                    noted.push((stringify!($field).to_string(), name));
                }
            };
        }
        fill!(repo, "SNAP_REPOSITORY", true);
        fill!(password_file, "SNAP_PASSWORD_FILE", true);
        fill!(password_command, "SNAP_PASSWORD_COMMAND", true);
        fill!(cache_dir, "SNAP_CACHE_DIR", true);
        fill!(profile, "SNAP_PROFILE", true);
        fill!(endpoint, "AWS_ENDPOINT_URL", false);
        fill!(access_key_id, "AWS_ACCESS_KEY_ID", false);
        fill!(secret_access_key, "AWS_SECRET_ACCESS_KEY", false);
        self.from_environment = noted;
    }

    /// The S3 options given on the command line, as their flags.
    pub fn s3_flags_given(&self) -> Vec<&'static str> {
        [
            ("endpoint", "--endpoint"),
            ("region", "--region"),
            ("s3_addressing", "--s3-addressing"),
            ("access_key_id", "--access-key-id"),
            ("secret_access_key", "--secret-access-key"),
            ("connections", "--connections"),
            ("no_bulk_delete", "--no-bulk-delete"),
        ]
        .into_iter()
        .filter(|(id, _)| self.given_on_command_line(id))
        .map(|(_, flag)| flag)
        .collect()
    }
}

impl Cli {
    /// Parses the command line, noting which options came from it rather
    /// than from the environment.
    pub fn parse_noting_sources() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let mut level = Some(&matches);
        while let Some(m) = level {
            for id in m.ids() {
                if m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine) {
                    cli.global.from_command_line.push(id.to_string());
                }
            }
            level = m.subcommand().map(|(_, sub)| sub);
        }
        cli.global.read_environment();
        cli
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new repository
    #[command(after_help = "Examples:\n  snap init\n  snap --repo /mnt/nas/backup init")]
    Init(InitArgs),
    /// Back up files and directories into a new snapshot
    #[command(alias = "backup")]
    #[command(
        after_help = "Examples:\n  snap create ~/Documents\n  snap create ~/project --exclude target --exclude '*.log' --tag daily"
    )]
    Create(CreateArgs),
    /// List snapshots
    #[command(
        after_help = "Examples:\n  snap snapshots\n  snap snapshots --host laptop --path ~/Documents"
    )]
    Snapshots(SnapshotsArgs),
    /// Restore a snapshot, or make a folder match one (--delete), with a preview (--dry-run) and undo
    #[command(
        after_help = "Examples:\n  snap restore latest --target /tmp/restored\n  snap restore a4b8312e:/home/me/Documents --target ~/Documents --delete --dry-run"
    )]
    Restore(RestoreArgs),
    /// Write a file of a snapshot, or a directory as a tar stream, to standard output
    #[command(
        after_help = "Examples:\n  snap dump latest /home/me/notes.txt > notes.txt\n  snap dump a4b8312e /home/me/Documents > documents.tar"
    )]
    Dump(DumpArgs),
    /// Remove snapshots (their data is freed by prune)
    #[command(
        after_help = "Examples:\n  snap forget a4b8312e\n  snap forget latest --host laptop --path ~/Documents --dry-run"
    )]
    Forget(ForgetArgs),
    /// Remove snapshots by a retention policy and delete unused data
    #[command(
        after_help = "Examples:\n  snap prune --keep-daily 7 --keep-weekly 4 --dry-run\n  snap prune --keep-last 10 --host laptop"
    )]
    Prune(PruneArgs),
    /// Verify the repository's structure and, with --read-data, all data
    #[command(after_help = "Examples:\n  snap check\n  snap check --read-data-subset 10%")]
    Check(CheckArgs),
    /// Mend the index from the packs themselves, or snapshots that name
    /// lost data
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  snap repair index --dry-run\n  snap repair snapshots --forget"
    )]
    Repair(RepairCommand),
    /// Create, update or show a connection profile (secrets are never shown)
    #[command(
        after_help = "Examples:\n  snap config --profile work --repo s3://backups/laptop --password-file ~/.config/snap/work.pass\n  snap --profile work config --check"
    )]
    Config(ConfigArgs),
    /// Manage the passphrases that unlock the repository
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  snap key list\n  snap key add --new-password-file new.pass\n  snap key add --write-only --host laptop --new-password-file laptop.pass"
    )]
    Key(KeyCommand),
    /// List the files of a snapshot
    #[command(
        after_help = "Examples:\n  snap ls latest\n  snap ls a4b8312e /home/me/Documents --long"
    )]
    Ls(LsArgs),
    /// Show what changed between two snapshots
    #[command(after_help = "Examples:\n  snap diff a4b8312e 5e6f7a8b")]
    Diff(DiffArgs),
    /// Find files by name or path pattern across snapshots
    #[command(
        after_help = "Examples:\n  snap find '*.pdf'\n  snap find 'Documents/taxes' --host laptop"
    )]
    Find(FindArgs),
    /// Repository size, deduplication and compression
    #[command(after_help = "Examples:\n  snap stats\n  snap --json stats")]
    Stats,
    /// Open the web interface: settings, Backup now, Manage, browse and
    /// restore, checks; and run the automatic backups of every profile
    #[command(
        after_help = "Examples:\n  snap ui\n  snap ui --no-open --keep-token --listen 127.0.0.1:7878"
    )]
    Ui(UiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "Examples:\n  snap completions bash > ~/.local/share/bash-completion/completions/snap"
    )]
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(after_help = "Examples:\n  snap man > snap.1")]
    Man,
}

#[derive(Args, Debug)]
pub struct UiArgs {
    /// Address to listen on. Default: 127.0.0.1 and a free port. Another
    /// address than loopback lets other machines reach the page (the token
    /// is still required)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Do not open a browser: run as a service (automatic backups)
    #[arg(long)]
    pub no_open: bool,
    /// Keep the access token (and so the address) across starts, in a
    /// file of the data directory readable by you alone: for a service
    /// whose bookmark should keep working. Without it each start makes a
    /// new token, kept nowhere
    #[arg(long)]
    pub keep_token: bool,
    /// Replace the kept token with a new one: every browser that has the
    /// old address must open the new one
    #[arg(long, requires = "keep_token")]
    pub new_token: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id, unique id prefix, or "latest"
    #[arg(value_name = "ID")]
    pub snapshot: String,
    /// Only this absolute path as backed up, and what is below it
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Long format: kind, mode, owner, size and time
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Which snapshots a command considers, and so which one "latest" is.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only snapshots of this host (repeatable); "latest" is the newest of them
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots with this tag (repeatable: all must match)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only snapshots whose backed-up paths include PATH (repeatable), so
    /// that "latest" is the newest backup of this folder, not of another
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older snapshot: id, unique id prefix, or "latest"
    #[arg(value_name = "ID1")]
    pub first: String,
    /// The newer snapshot: id, unique id prefix, or "latest"
    #[arg(value_name = "ID2")]
    pub second: String,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// Glob on names (`*.pdf`), or on whole paths if it contains '/'
    #[arg(value_name = "PATTERN")]
    pub pattern: String,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Index again, from their own headers, the packs no index names; take
    /// out of the index the packs that are gone (asked for by name, not
    /// only listed); keep every entry that is right
    #[command(after_help = "Examples:\n  snap repair index --dry-run\n  snap repair index")]
    Index {
        /// Show what would change, change nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// For each snapshot that names data that is gone, write a snapshot
    /// without the damaged files (tagged "repaired"); the original stays
    /// until forgotten
    #[command(
        after_help = "Examples:\n  snap repair snapshots --dry-run\n  snap repair snapshots --forget"
    )]
    Snapshots {
        /// Show what would change, change nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Forget each damaged original once its replacement is written
        #[arg(long)]
        forget: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List keys; the one used now is marked
    List,
    /// Add a passphrase: a full key, or with --write-only one that can add
    /// backups and read nothing (for a device that should not see the others')
    #[command(
        after_help = "Examples:\n  snap key add --new-password-file new.pass\n  snap key add --write-only --host kitchen-laptop --new-password-file laptop.pass"
    )]
    Add(KeyAddArgs),
    /// Remove a key (never the last one, nor the one in use)
    Remove {
        /// Key id or unique prefix
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Change the passphrase used now
    Passwd(NewPasswordArgs),
}

#[derive(Args, Debug)]
pub struct KeyAddArgs {
    #[command(flatten)]
    pub password: NewPasswordArgs,
    /// A key that can only add snapshots: it cannot read any file, tree or
    /// snapshot (its own included, except from the device's local record),
    /// nor forget or prune
    #[arg(long, requires = "host")]
    pub write_only: bool,
    /// The device a write-only key is for, as `key list` shows it and as
    /// its backups name their host: needed, since a key made here is
    /// almost always for another computer than this one
    #[arg(long, value_name = "HOST", requires = "write_only")]
    pub host: Option<String>,
}

#[derive(Args, Debug)]
pub struct NewPasswordArgs {
    /// Read the new passphrase from FILE (else SNAP_NEW_PASSWORD, else asked twice on a terminal)
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Argon2id memory in KiB for the new key (default 65536, at most 1048576)
    #[arg(long, value_name = "KIB", hide_short_help = true)]
    pub kdf_memory: Option<u32>,
    /// Argon2id passes for the new key (default 14, at most 64; memory × passes at most 4 GiB)
    #[arg(long, value_name = "N", hide_short_help = true)]
    pub kdf_iterations: Option<u32>,

    /// Create it even when repositories are near (beside it in the bucket
    /// or folder), without asking: a typo in a root path otherwise makes a
    /// second, empty repository beside the one holding the backups
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Store AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment in the profile
    #[arg(long)]
    pub save_keys: bool,
    /// Command that prints the secret access key, stored instead of the secret
    #[arg(long, value_name = "CMD")]
    pub secret_command: Option<String>,
    /// Run CMD with the shell when an automatic backup of `snap ui` fails,
    /// with SNAP_PROFILE and SNAP_ERROR set; "" removes it. Set here only:
    /// the web page shows it but cannot set a command
    #[arg(long, value_name = "CMD")]
    pub on_failure: Option<String>,
    /// Remove the profile
    #[arg(long)]
    pub remove: bool,
    /// Use profile NAME whenever no profile is named with -P or SNAP_PROFILE
    #[arg(long, value_name = "NAME", conflicts_with = "no_default")]
    pub default: Option<String>,
    /// Use no profile unless one is named
    #[arg(long)]
    pub no_default: bool,
    /// Test the settings in effect (with --profile NAME, that profile's): reach
    /// the endpoint, list the bucket, open the repository with the password.
    /// Names the setting at fault
    #[arg(long, conflicts_with_all = ["save_keys", "secret_command", "on_failure", "remove", "default", "no_default"])]
    pub check: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Store data unencrypted (ids stay keyed and every object is still
    /// verified by its hash). Anyone who can read the storage can read it,
    /// and anyone who can write it can change your backups unnoticed.
    /// Every later command needs --insecure-no-encryption
    #[arg(long)]
    pub no_encryption: bool,

    /// Argon2id memory in KiB for the new key (default 65536, at most 1048576)
    #[arg(long, value_name = "KIB", hide_short_help = true)]
    pub kdf_memory: Option<u32>,

    /// Argon2id passes for the new key (default 14, at most 64; memory × passes at most 4 GiB)
    #[arg(long, value_name = "N", hide_short_help = true)]
    pub kdf_iterations: Option<u32>,

    /// Create it even when repositories are near (beside it in the bucket
    /// or folder), without asking: a typo in a root path otherwise makes a
    /// second, empty repository beside the one holding the backups
    #[arg(long)]
    pub yes: bool,

    /// Keep every object snap writes undeletable for N days with S3 Object
    /// Lock (the bucket must have Object Lock; also the profile's
    /// object_lock_days). Stored in the repository, for every device
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(snap_engine::backend::MAX_RETENTION_DAYS)))]
    pub object_lock_days: Option<u32>,

    /// Object Lock mode: governance (an account allowed to bypass it can
    /// still delete early) or compliance (no one can)
    #[arg(long, value_enum, value_name = "MODE", requires = "object_lock_days")]
    pub object_lock_mode: Option<ObjectLockMode>,
}

/// S3 Object Lock's retention modes, as `--object-lock-mode` and a
/// profile's `object_lock_mode` name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectLockMode {
    Governance,
    Compliance,
}

impl From<ObjectLockMode> for snap_engine::retention::LockMode {
    fn from(m: ObjectLockMode) -> Self {
        match m {
            ObjectLockMode::Governance => snap_engine::retention::LockMode::Governance,
            ObjectLockMode::Compliance => snap_engine::retention::LockMode::Compliance,
        }
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Files and directories to back up
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record instead of this machine's
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Leave out paths matching GLOB (a name anywhere, or an absolute path
    /// pattern if it contains '/'; repeatable)
    #[arg(short = 'e', long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Compare with this snapshot instead of the latest of the same host and paths
    #[arg(long, value_name = "ID")]
    pub parent: Option<String>,
    /// Read all files, even those the parent snapshot shows unchanged
    #[arg(long)]
    pub force: bool,
    /// Write no snapshot when nothing changed since the latest of the same
    /// paths (overrides the profile's skip_if_unchanged)
    #[arg(long, overrides_with = "no_skip_if_unchanged")]
    pub skip_if_unchanged: bool,
    /// Write a snapshot even when nothing changed (overrides the profile's
    /// skip_if_unchanged)
    #[arg(long, overrides_with = "skip_if_unchanged")]
    pub no_skip_if_unchanged: bool,
    /// Delete nothing, for a key that may not delete (its lock stays,
    /// released, for a device with full rights to clear; also the profile's
    /// no_delete)
    #[arg(long)]
    pub no_delete: bool,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id, unique id prefix, or "latest". ID:PATH restores the
    /// contents of PATH (as backed up) straight into the target; without
    /// it, backed-up absolute paths are recreated below the target
    #[arg(value_name = "ID[:PATH]")]
    pub snapshot: String,
    /// Directory to restore into
    #[arg(short, long, value_name = "DIR")]
    pub target: PathBuf,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Restore only what matches PATTERN, and what is below it (as --exclude
    /// of create: a name anywhere, or a path pattern if it has a '/'; repeatable)
    #[arg(short, long = "include", value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Neither restore nor delete what matches PATTERN (repeatable)
    #[arg(short, long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Delete what the snapshot lacks, inside what the restore covers, once
    /// every file is restored: the folder then matches the snapshot
    #[arg(long)]
    pub delete: bool,
    /// When to rewrite an existing file: always, if-changed (unless size,
    /// time and contents match), if-newer (unless the file is newer), never
    #[arg(long, value_name = "WHEN", default_value = "if-changed")]
    pub overwrite: String,
    /// List what would be created, replaced, updated and deleted, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Take no undo snapshot before replacing or deleting what exists
    #[arg(long)]
    pub no_undo: bool,
    /// Do not ask before deleting more than half of the target's files
    #[arg(long)]
    pub yes: bool,
    /// Restore "latest" even when this device saw a newer snapshot that
    /// storage no longer shows (a rollback): by default that stops with
    /// exit code 13
    #[arg(long)]
    pub allow_rollback: bool,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Snapshot id, unique id prefix, or "latest"
    #[arg(value_name = "ID")]
    pub snapshot: String,
    /// Absolute path as backed up: a file's contents, or a directory as a tar stream
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Write from "latest" even when this device saw a newer snapshot that
    /// storage no longer shows (by default that stops with exit code 13)
    #[arg(long)]
    pub allow_rollback: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshot ids, unique id prefixes of at least 4 hex digits, or
    /// `latest` (with --host)
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// `latest` needs --host; --path narrows it to one folder's backups
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Show what would be removed, and remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before removing more than one snapshot
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Keep the N newest snapshots of each group (by default each host's
    /// backups of each set of paths: see --group-by)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep, in each group, the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep, in each group, the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep, in each group, the newest snapshot of each of the last N weeks that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep, in each group, the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep, in each group, the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep snapshots taken within DURATION of their group's newest (e.g. "30d", "1y 6months")
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub keep_within: Option<std::time::Duration>,
    /// Keep snapshots with this tag (repeatable)
    #[arg(long, value_name = "TAG")]
    pub keep_tag: Vec<String>,
    /// What makes a group: a comma-separated list of host, paths and tags
    /// ("" for the whole repository as one group)
    #[arg(long, value_name = "LIST", default_value = "host,paths")]
    pub group_by: snap_engine::snapshot::GroupBy,
    /// Apply the policy only to snapshots of this host (repeatable)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Show what would be removed, change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Make this device the one that deletes unused data. One device does
    /// that, named in the repository (the first that prunes); on the
    /// others prune only forgets snapshots
    #[arg(long)]
    pub take_over: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also download every pack and verify every blob
    #[arg(long)]
    pub read_data: bool,
    /// Download and verify only part of the packs: N% (a random share) or
    /// n/t (slice n of t; run 1/t to t/t over time to cover everything)
    #[arg(long, value_name = "SUBSET", conflicts_with = "read_data")]
    pub read_data_subset: Option<check::Subset>,
    /// Trust this device's cache of index files, snapshots and trees
    /// instead of downloading them again: faster, but damage to those
    /// objects in the bucket then goes unnoticed
    #[arg(long)]
    pub with_cache: bool,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// Each command's help ends with examples, as restic's does, and each
    /// example is a command line snap accepts.
    #[test]
    fn every_command_shows_examples_that_parse() {
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let examples = help
                .strip_prefix("Examples:\n")
                .unwrap_or_else(|| panic!("{name}: no examples"));
            for line in examples.lines() {
                // As a shell would split it, up to a redirection.
                let words: Vec<String> = line
                    .split_whitespace()
                    .take_while(|w| *w != ">")
                    .map(|w| w.trim_matches('\'').to_string())
                    .collect();
                assert!(
                    Cli::try_parse_from(&words).is_ok(),
                    "{name}: {line:?} does not parse"
                );
            }
        }
    }
}
