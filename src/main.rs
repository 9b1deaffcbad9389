//! The `switchboard` binary: parse the settings, set up logging, run the sub-command. Every
//! failure ends with one line on standard error naming what was wrong, and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use switchboard::commands;
use switchboard::config::{Cli, Command, UserCommand};
use switchboard::startup::{Application, StartupError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // clap's first line names the flag and the problem; its usage hints are noise here.
            let rendered = e.render().to_string();
            eprintln!("{}", rendered.lines().next().unwrap_or("error: invalid arguments"));
            return ExitCode::from(2);
        }
    };
    switchboard::logging::init(cli.settings.operations.log_format);
    let settings = cli.settings;
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => commands::migrate(&settings),
        Command::User { action: UserCommand::Add(args) } => commands::add_user(&settings, &args),
        Command::User { action: UserCommand::Disable(args) } => {
            commands::set_user_disabled(&settings, &args, true)
        }
        Command::User { action: UserCommand::Enable(args) } => {
            commands::set_user_disabled(&settings, &args, false)
        }
        Command::Token(args) => commands::print_token(&settings, &args),
        Command::Backup(args) => commands::backup(&settings, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: switchboard::config::Settings) -> Result<(), StartupError> {
    actix_web::rt::System::new()
        .block_on(async move { Application::build(settings).await?.run_until_stopped().await })
}
