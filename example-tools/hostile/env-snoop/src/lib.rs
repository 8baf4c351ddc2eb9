//! Hostile: reads every environment variable and argument it can (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use are_guest_sdk::wasip2::cli::environment;

/// Variables that often hold secrets or reveal the host.
const WANTED: &[&str] = &[
    "HOME",
    "PATH",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "HOSTNAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_CLIENT_SECRET",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "DATABASE_URL",
    "SSH_AUTH_SOCK",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "CARGO_MANIFEST_DIR",
];

struct EnvSnoop;

impl exports::hostile::env_snoop::attack::Guest for EnvSnoop {
    fn vars() -> Vec<(String, String)> {
        std::env::vars_os()
            .map(|(name, value)| {
                (
                    name.to_string_lossy().into_owned(),
                    value.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }

    fn raw_vars() -> Vec<(String, String)> {
        environment::get_environment()
    }

    fn lookup(extra: Vec<String>) -> Vec<(String, Option<String>)> {
        let raw = environment::get_environment();
        WANTED
            .iter()
            .map(|name| (*name).to_owned())
            .chain(extra)
            .map(|name| {
                let value = std::env::var_os(&name)
                    .map(|value| value.to_string_lossy().into_owned())
                    .or_else(|| {
                        raw.iter()
                            .find(|(key, _)| *key == name)
                            .map(|(_, value)| value.clone())
                    });
                (name, value)
            })
            .collect()
    }

    fn args() -> Vec<String> {
        let mut args: Vec<String> = std::env::args_os()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        args.extend(environment::get_arguments());
        args
    }

    fn cwd() -> Option<String> {
        environment::initial_cwd()
    }
}

export!(EnvSnoop);
