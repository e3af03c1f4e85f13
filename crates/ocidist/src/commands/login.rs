//! `login` and `logout`.

use std::io::{BufRead, Write};

use oci_client::AuthOptions;
use oci_core::Error;

use super::{CmdResult, host};
use crate::connect::Connector;
use crate::failure::Failure;
use crate::login::{docker_config_path, remove_credentials, save_credentials};

pub async fn login(connector: &Connector, registry: &str) -> CmdResult {
    let host = host(registry)?;
    let (user, password) = match connector.auth() {
        AuthOptions::Basic { username, password } => (username.clone(), password.clone()),
        AuthOptions::Anonymous | AuthOptions::FromConfig | AuthOptions::ConfigFiles(_) => {
            prompt_credentials(&host)?
        }
        _ => {
            return Err(Failure::Usage(
                "login stores a user name and password: use -u USER with -p or --password-stdin"
                    .to_owned(),
            ));
        }
    };
    if user.is_empty() || password.is_empty() {
        return Err(Failure::Usage(
            "a user name and a password are needed".to_owned(),
        ));
    }
    // Checked before anything is saved: GET /v2/ with the credentials
    // (basic, or a token obtained with them) must succeed.
    let checked = connector.clone().with_auth(AuthOptions::Basic {
        username: user.clone(),
        password: password.clone(),
    });
    checked.client(&host)?.ping().await?;
    let path = docker_config_path()?;
    let store =
        tokio::task::spawn_blocking(move || save_credentials(&path, &host, &user, &password))
            .await
            .map_err(|e| Error::internal(format!("saving credentials: {e}")))??;
    eprintln!("Login Succeeded (credentials in {store})");
    Ok(())
}

pub fn logout(registry: &str) -> CmdResult {
    let host = host(registry)?;
    let removed = remove_credentials(&docker_config_path()?, &host)?;
    if removed.is_empty() {
        eprintln!("not logged in to {host}");
    } else {
        let from: Vec<String> = removed.iter().map(ToString::to_string).collect();
        eprintln!(
            "Removed login credentials for {host} from {}",
            from.join(" and ")
        );
    }
    Ok(())
}

/// Asks for a user name and a password on the terminal (the password
/// without echo).
fn prompt_credentials(host: &str) -> Result<(String, String), Failure> {
    let no_tty = || {
        Failure::Usage(format!(
            "no terminal to ask for credentials: use `ocidist login -u USER --password-stdin {host}`"
        ))
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| no_tty())?;
    let mut out = tty.try_clone().map_err(|_| no_tty())?;
    let mut input = std::io::BufReader::new(tty);
    let mut ask = |prompt: &str, echo: bool| -> Result<String, Failure> {
        let io = |e: std::io::Error| Failure::from(Error::internal(format!("terminal: {e}")));
        write!(out, "{prompt}")
            .and_then(|()| out.flush())
            .map_err(io)?;
        let _quiet = (!echo).then(NoEcho::start);
        let mut line = String::new();
        input.read_line(&mut line).map_err(io)?;
        if !echo {
            writeln!(out).map_err(io)?;
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let user = ask(&format!("Username for {host}: "), true)?;
    let password = ask("Password: ", false)?;
    Ok((user, password))
}

/// Terminal echo off until dropped (through `stty`, on the controlling
/// terminal).
struct NoEcho;

impl NoEcho {
    fn start() -> NoEcho {
        stty("-echo");
        NoEcho
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        stty("echo");
    }
}

fn stty(arg: &str) {
    if let Ok(tty) = std::fs::File::open("/dev/tty") {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(tty)
            .status();
    }
}
