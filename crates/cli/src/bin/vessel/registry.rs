//! `vessel pull`, `push`, `login`, `logout`: argument parsing and output
//! only; the work is `vessel_registry`'s. Progress goes to stderr (live bars
//! on a terminal, plain lines otherwise, nothing with -q); stdout gets the
//! digest, for scripts.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use vessel_registry::render::Bars;
use vessel_registry::vessel_image::manifest::Platform;
use vessel_registry::vessel_image::{ImageStore, Reference};
use vessel_registry::{Options, Progress, RetryPolicy, Silent};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image to pull: [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST].
    #[arg(value_name = "REF")]
    reference: String,
    /// Platform to pick from a multi-platform image: OS/ARCH[/VARIANT].
    #[arg(long, value_name = "OS/ARCH", default_value = "linux/amd64", value_parser = parse_platform)]
    platform: Platform,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image in the local store.
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Where to push it [default: IMAGE's own name].
    #[arg(value_name = "DEST")]
    dest: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host[:port], e.g. docker.io or localhost:5000.
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// User name.
    #[arg(short, long)]
    username: String,
    /// Password (visible to other users in the process list: prefer
    /// --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Use HTTPS and verify certificates (--tls-verify=false: plain HTTP).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Auth file [default: ${XDG_RUNTIME_DIR}/containers/auth.json].
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host[:port].
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// Auth file [default: ${XDG_RUNTIME_DIR}/containers/auth.json].
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
}

/// Flags pull and push share.
#[derive(Debug, Args)]
struct Common {
    /// Use HTTPS and verify certificates (--tls-verify=false: plain HTTP).
    /// Default: HTTPS, except for loopback and registries marked insecure
    /// in /etc/containers/registries.conf.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Auth file [default: ${XDG_RUNTIME_DIR}/containers/auth.json].
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
    /// Times to retry a request that meets a passing failure (429, 5xx,
    /// a dropped connection; downloads resume where they broke).
    #[arg(long, value_name = "N", default_value_t = RetryPolicy::default().retries)]
    retry: u32,
    /// The first wait before a retry (e.g. 500ms, 2s); it doubles after each
    /// one, and a registry's Retry-After takes precedence (at most 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    retry_delay: Option<Duration>,
}

impl Common {
    fn options(&self) -> Options {
        let progress: Arc<dyn Progress> = if self.quiet {
            Arc::new(Silent)
        } else {
            Arc::new(Bars::stderr())
        };
        Options {
            tls_verify: self.tls_verify,
            auth_file: self.authfile.clone(),
            progress,
            retry: RetryPolicy {
                retries: self.retry,
                base_delay: self
                    .retry_delay
                    .unwrap_or(RetryPolicy::default().base_delay),
            },
            ..Options::default()
        }
    }
}

/// `500ms`, `2s`, `1m`, or a number of seconds.
fn parse_delay(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 500ms or 2s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!(
            "{s:?} is not a duration such as 500ms or 2s (units: ms, s, m)"
        )),
    }
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match parts.as_slice() {
        [os, arch] if ok(os) && ok(arch) => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: Some(variant.to_string()),
        }),
        _ => Err(format!(
            "{s:?} is not OS/ARCH[/VARIANT], e.g. linux/arm64/v8"
        )),
    }
}

fn reference(s: &str) -> anyhow::Result<Reference> {
    // The parser's error already names the input and what is wrong.
    Ok(Reference::parse(s)?)
}

fn open(root: &Path) -> anyhow::Result<ImageStore> {
    ImageStore::open(root)
        .with_context(|| format!("Cannot open the image store {}", root.display()))
}

/// `docker.io`, `localhost:5000`: what login/logout are given, without a
/// scheme or path (`https://index.docker.io/v1/` is docker.io).
fn registry_name(s: &str) -> anyhow::Result<String> {
    let name = vessel_registry::auth_file::normalize(s.trim_end_matches('/'));
    if name.is_empty() || name.contains('/') || name.chars().any(|c| c.is_whitespace()) {
        bail!("{s:?} is not a registry host[:port]");
    }
    Ok(name)
}

/// `vessel pull REF`: prints the digest of what REF names.
pub fn pull(root: &Path, args: PullArgs) -> anyhow::Result<ExitCode> {
    let r = reference(&args.reference)?;
    let store = open(root)?;
    let options = Options {
        platform: args.platform,
        ..args.common.options()
    };
    let digest = vessel_registry::pull(&store, &r, &options)?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// `vessel push IMAGE [DEST]`: prints the digest the registry stored.
pub fn push(root: &Path, args: PushArgs) -> anyhow::Result<ExitCode> {
    let image = reference(&args.image)?;
    let dest = match &args.dest {
        Some(d) => reference(d)?,
        None => image.clone(),
    };
    let store = open(root)?;
    let digest = vessel_registry::push(&store, &image, &dest, &args.common.options())?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// `vessel login REGISTRY -u USER (-p PASS | --password-stdin)`.
pub fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let registry = registry_name(&args.registry)?;
    let password = match (args.password, args.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .take(64 << 10)
                .read_to_string(&mut s)
                .context("Cannot read the password from standard input")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return Err(anyhow!("Give a password with -p or --password-stdin")),
    };
    if password.is_empty() {
        bail!("The password is empty");
    }
    let options = Options {
        tls_verify: args.tls_verify,
        auth_file: args.authfile,
        ..Options::default()
    };
    vessel_registry::login(&registry, &args.username, &password, &options)?;
    println!("Login Succeeded!");
    Ok(ExitCode::SUCCESS)
}

/// `vessel logout REGISTRY`.
pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let registry = registry_name(&args.registry)?;
    let options = Options {
        auth_file: args.authfile,
        ..Options::default()
    };
    if vessel_registry::logout(&registry, &options)? {
        println!("Removed login credentials for {registry}");
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("Not logged into {registry}")
    }
}
