//! The man pages and shell completions, generated from the clap definitions in main.rs so they never drift from
//! `--help`: `fastproxy generate-man DIR` (hidden, used by the package build) and `fastproxy completions SHELL`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Sections after the generated ones in fastproxy(1): where things live and how the service is driven.
const EXTRA_SECTIONS: &str = r#".SH FILES
.TP
\fI/etc/fastproxy/proxy.yaml\fR
The config the packaged service runs (\fBfastproxy \-\-generate\-config\fR prints a commented template);
check it with \fBfastproxy \-\-check\-config /etc/fastproxy/proxy.yaml\fR.
.TP
\fI/usr/lib/systemd/system/fastproxy.service\fR
The systemd unit: \fBsystemctl enable \-\-now fastproxy\fR, \fBsystemctl reload fastproxy\fR,
logs with \fBjournalctl \-u fastproxy\fR.
.SH SIGNALS
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop accepting miners, give shares in flight up to \fIdrain_timeout\fR seconds for the pool's verdict, exit 0.
.TP
\fBSIGHUP\fR
Reload the config file: pool lists, accounts and limits apply without dropping miners; a file that is invalid
or changes listeners, threads or protocols is refused and the running config stays.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter (e.g. \fIdebug\fR); overrides \fB\-v\fR and \fB\-q\fR.
.TP
\fBNOTIFY_SOCKET\fR
Set by systemd for \fIType=notify\fR: READY=1 is sent once every listener is bound, RELOADING=1 and READY=1
around a reload, STOPPING=1 on shutdown.
.SH SEE ALSO
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.exec\fR(5)
"#;

/// Writes fastproxy.1 and one page per visible subcommand (fastproxy-demo.1, ...) of `cli` (main.rs's
/// `Cli::command()`) into `dir`; returns the files written.
pub fn generate_man(cli: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cli.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    let main = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(main.get_filename());
    let mut file = io::BufWriter::new(std::fs::File::create(&path)?);
    main.render(&mut file)?;
    file.write_all(EXTRA_SECTIONS.as_bytes())?;
    file.flush()?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // Named fastproxy-demo etc. by clap's build(); clap_mangen takes the display name.
        written.push(clap_mangen::Man::new(sub.clone()).generate_to(dir)?);
    }
    Ok(written)
}

/// Writes the completion script of `full` (main.rs's `Cli::command()`) for `shell` to `out`.
pub fn completions(full: clap::Command, shell: clap_complete::Shell, out: &mut dyn Write) {
    // The same arguments and subcommands without the hidden ones (clap_complete's bash script would offer them).
    let mut cmd = clap::Command::new("fastproxy")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    clap_complete::generate(shell, &mut cmd, "fastproxy", out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn man_pages_cover_every_visible_option_and_subcommand() {
        let dir = std::env::temp_dir().join(format!("fastproxy-man-{}", std::process::id()));
        let files = generate_man(crate::Cli::command(), &dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let cmd = crate::Cli::command();
        let main = std::fs::read_to_string(dir.join("fastproxy.1")).unwrap();
        assert!(main.starts_with(".ie"), "roff: {}", &main[..40]);
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                // roff escapes the dashes: \-\-check\-config
                let escaped = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(main.contains(&escaped), "fastproxy.1 lacks --{long}");
            }
        }
        for sub in cmd.get_subcommands() {
            let page = format!("fastproxy-{}.1", sub.get_name());
            assert_eq!(
                names.contains(&page),
                !sub.is_hide_set(),
                "{page} in {names:?}"
            );
        }
        assert!(main.contains(".SH FILES") && main.contains("/etc/fastproxy/proxy.yaml"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn completions_offer_the_options_and_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            completions(crate::Cli::command(), shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in [
                "check-config",
                "generate-config",
                "sim-pool",
                "hash-password",
            ] {
                assert!(text.contains(word), "{shell} completion lacks {word}");
            }
            assert!(
                !text.contains("generate-man"),
                "{shell} offers the hidden generate-man"
            );
        }
    }
}
