//! The open-file limit: read from /proc/self/limits, raised with the `prlimit` tool (no libc binding
//! needed) as far as the process is allowed, and a clear message when the hard limit stands in the way.

use std::process::Command;

/// The soft and hard RLIMIT_NOFILE of this process (`u64::MAX` for unlimited).
pub fn nofile() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut v = line["Max open files".len()..].split_whitespace().map(|x| {
        if x == "unlimited" {
            Some(u64::MAX)
        } else {
            x.parse().ok()
        }
    });
    Some((v.next()??, v.next()??))
}

/// What happened when the limit was raised.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Raise {
    pub needed: u64,
    pub soft: u64,
    pub hard: u64,
    /// Every problem, in words; empty when the limit is enough.
    pub message: Option<String>,
}

fn prlimit(soft: u64, hard: u64) -> Result<(), String> {
    let out = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={soft}:{hard}"))
        .output()
        .map_err(|e| format!("cannot run prlimit: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Raises the soft limit to `needed`, and the hard limit too when it is lower (which needs
/// CAP_SYS_RESOURCE). Children started afterwards (a proxy) inherit the result.
pub fn raise_nofile(needed: u64) -> Raise {
    let Some((soft, hard)) = nofile() else {
        return Raise {
            needed,
            soft: 0,
            hard: 0,
            message: Some("cannot read /proc/self/limits".into()),
        };
    };
    if soft >= needed {
        return Raise {
            needed,
            soft,
            hard,
            message: None,
        };
    }
    let mut message = None;
    if hard < needed {
        if let Err(e) = prlimit(needed, needed) {
            message = Some(format!(
                "open-file limit: {needed} descriptors needed but the hard limit is {hard} and cannot be \
                 raised ({e}; raising it needs CAP_SYS_RESOURCE: run as root outside a restricted \
                 container, or `ulimit -Hn {needed}` in the shell that starts this)"
            ));
            let _ = prlimit(hard, hard);
        }
    } else if let Err(e) = prlimit(needed, hard) {
        message = Some(format!(
            "cannot raise the open-file soft limit to {needed}: {e}"
        ));
    }
    let (soft, hard) = nofile().unwrap_or((soft, hard));
    Raise {
        needed,
        soft,
        hard,
        message,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_limit() {
        let (soft, hard) = super::nofile().unwrap();
        assert!(soft > 0 && hard >= soft);
    }
}
