//! The one safe name of an agent in git refs and file names. Any valid agent
//! id (1 to 256 bytes, no control characters) maps to a single name that is a
//! valid git ref component and file name, never a prefix-with-slash of
//! another agent's name, and different for different ids:
//!
//! - bytes outside `[A-Za-z0-9_-]` are percent-encoded (`%2F`, `%2E`, `%C3%A9`…),
//!   so the name has no `/`, no `.` (hence no `..`, no `.lock`, no leading or
//!   trailing dot), no space, `~`, `^`, `:`, `?`, `*`, `[`, `\` or `@{`;
//! - a name longer than [`MAX_NAME`] bytes is cut (at a whole escape) and
//!   ends in `+` and 32 hex digits of the id's SHA-256. `+` is itself always
//!   escaped in the first form, so the two forms never meet.

use super::hex;
use sha2::{Digest, Sha256};

/// Longest name: room for `.cedar`, `.md` and `refs/remotes/origin/shadowdraft/`
/// within a 255-byte file name.
pub const MAX_NAME: usize = 160;

/// The agent's safe name.
pub fn safe_name(agent: &str) -> String {
    let mut name = String::with_capacity(agent.len());
    for b in agent.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            name.push(b as char);
        } else {
            name.push('%');
            name.push_str(&hex::encode(&[b]).to_ascii_uppercase());
        }
    }
    if name.len() <= MAX_NAME {
        return name;
    }
    let digest = hex::encode(&Sha256::digest(agent.as_bytes())[..16]);
    let mut keep = MAX_NAME - 1 - digest.len();
    // Never cut an escape in half.
    while name.as_bytes()[..keep].iter().rev().take(2).any(|&b| b == b'%') {
        keep -= 1;
    }
    format!("{}+{digest}", &name[..keep])
}

/// The agent id a safe name stands for; `None` for a shortened name (look it
/// up instead) or text that is not a safe name.
pub fn agent_of(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('+') {
        return None;
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escaped = name.get(i + 1..i + 3)?;
                if escaped.bytes().any(|b| b.is_ascii_lowercase()) {
                    return None;
                }
                out.extend(hex::decode(escaped)?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    let agent = String::from_utf8(out).ok()?;
    // Only the canonical encoding decodes: one name per agent.
    (safe_name(&agent) == name).then_some(agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_keep_their_name_and_the_rest_is_escaped() {
        assert_eq!(safe_name("billing-bot_01"), "billing-bot_01");
        assert_eq!(safe_name("victim/x"), "victim%2Fx");
        assert_eq!(safe_name("a.lock"), "a%2Elock");
        assert_eq!(safe_name("@{u}"), "%40%7Bu%7D");
        assert_eq!(safe_name("é"), "%C3%A9");
        assert_eq!(agent_of("victim%2Fx").as_deref(), Some("victim/x"));
        assert_eq!(agent_of("victim%2fx"), None, "one spelling per agent");
        assert_eq!(agent_of("a.b"), None);
    }

    #[test]
    fn long_ids_are_cut_and_hashed_within_the_limit() {
        let long = "é".repeat(128);
        let name = safe_name(&long);
        assert!(name.len() <= MAX_NAME, "{}", name.len());
        assert!(name.contains('+'));
        assert_eq!(agent_of(&name), None);
        let other = format!("{}x", "é".repeat(127));
        assert_ne!(safe_name(&other), name);
        let boundary = "a".repeat(MAX_NAME);
        assert_eq!(safe_name(&boundary), boundary);
        assert!(safe_name(&format!("{boundary}a")).contains('+'));
    }
}
