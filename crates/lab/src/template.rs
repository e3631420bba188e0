//! Command templates: a peer's program is a string with placeholders, so any implementation
//! (another libp2p stack, a debugging tool) can be dropped into a scenario.
//!
//! The template is split into words first (whitespace separates; `'…'` and `"…"` quote), then
//! placeholders are replaced inside each word, so a value with spaces never splits a word and
//! no shell is involved. Placeholders:
//!
//! | placeholder | value |
//! |---|---|
//! | `{bin_dir}` | directory of the Punchr binaries |
//! | `{run_dir}`, `{log_dir}` | the run's directory and its log directory |
//! | `{db}` | the campaign database: `<run_dir>/punchr.sqlite`, or the URL of `run --db` |
//! | `{name}`, `{role}`, `{index}` | this peer's name, role and position in the scenario (from 1) |
//! | `{ip}` | this peer's own address |
//! | `{public_ip}` | the address the WAN sees for this peer (its outermost router's, or `{ip}`) |
//! | `{nat}` | this peer's NAT type (`public` on the WAN) |
//! | `{seed}` | this peer's identity seed (`punchr-lab/<name>`; `punchr_keyfile::from_seed`) |
//! | `{key_file}` | a punchr key file holding this peer's identity (index 0 of its seed); the original Go client reads the same format |
//! | `{api_key}` | this peer's API key, UUID-shaped and stable across runs: the lab labels every host registered with it, so a client whose identities the lab cannot derive (an original client) is labelled too |
//! | `{ip:NAME}` | the address of peer NAME |
//! | `{peer_id:NAME}` | the libp2p peer ID of peer NAME's identity |
//! | `{ips:ROLE}` | the addresses of every peer with that role, comma-separated, in file order |
//! | `{remote}` | (a whole word) the program of the peer's implementation: `{bin_dir}/punchr-lab remote-peer` for rust, `<peers dir>/<impl>/remote` for the others ([`crate::implementation`]) |
//! | `{{`, `}}` | literal braces |

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::implementation::Implementation;
use crate::scenario::Role;

/// What placeholders can refer to.
#[derive(Debug, Clone)]
pub struct Context {
    /// Directory of the Punchr binaries.
    pub bin_dir: PathBuf,
    /// The run's directory.
    pub run_dir: PathBuf,
    /// The run's log directory.
    pub log_dir: PathBuf,
    /// Every peer: name → (role, address).
    pub peers: BTreeMap<String, (Role, Ipv4Addr)>,
    /// Every peer name in scenario order (for `{ips:ROLE}`).
    pub order: Vec<String>,
    /// Every peer's key file (written by the lab).
    pub key_files: BTreeMap<String, PathBuf>,
    /// The campaign database the server and honeypot share (a SQLite path or a URL).
    pub db: String,
    /// The same database as reached from outside the lab's namespaces, when that differs (the
    /// lab's own PostgreSQL server: its Unix socket in the run directory).
    pub local_db: Option<String>,
    /// Where the remote implementations other than rust are built (`{remote}`).
    pub peers_dir: PathBuf,
}

/// The identity seed of a peer: stable across runs, so peer IDs are too.
pub fn seed(name: &str) -> String {
    format!("punchr-lab/{name}")
}

/// A peer's API key: its identity's public key bytes shaped as a version 4 UUID (the original
/// clients and server expect UUIDs), stable across runs like the identity.
pub fn api_key(name: &str) -> String {
    let public = punchr_keyfile::from_seed(seed(name).as_bytes(), 0)
        .public()
        .encode_protobuf();
    let mut bytes = [0u8; 16];
    // The protobuf header is the same for every key; the key bytes follow it.
    for (slot, byte) in bytes.iter_mut().zip(public.iter().rev()) {
        *slot = *byte;
    }
    punchr_store::uuid_v4_text(bytes)
}

/// The peer ID of a peer's identity (index 0 of its seed).
pub fn peer_id(name: &str) -> String {
    punchr_keyfile::from_seed(seed(name).as_bytes(), 0)
        .public()
        .to_peer_id()
        .to_string()
}

/// The peer a template is expanded for.
#[derive(Debug, Clone)]
pub struct Own<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its role.
    pub role: Role,
    /// Its position in the scenario, from 1.
    pub index: usize,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The address the WAN sees.
    pub public_ip: Ipv4Addr,
    /// Its NAT type's name.
    pub nat: &'a str,
    /// The libp2p implementation it runs (remotes; `{remote}`).
    pub implementation: Implementation,
}

/// Splits a template into words, honouring single and double quotes.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}

/// Replaces the placeholders in one string.
pub fn expand(text: &str, own: &Own<'_>, context: &Context) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if tail.starts_with('}') {
            return Err(format!("stray '}}' in {text:?} (write '}}}}')"));
        } else {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {text:?}"))?;
            out.push_str(&value(&tail[1..end], own, context)?);
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits and expands a command template. The whole word `{remote}` becomes the program of the
/// peer's implementation, which may be several words (`punchr-lab remote-peer`).
pub fn expand_command(
    template: &str,
    own: &Own<'_>,
    context: &Context,
) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    for word in split_words(template)? {
        if word == REMOTE_PROGRAM {
            argv.extend(
                own.implementation
                    .program(&context.bin_dir, &context.peers_dir),
            );
        } else {
            argv.push(expand(&word, own, context)?);
        }
    }
    Ok(argv)
}

/// The whole-word placeholder for a remote implementation's program.
pub const REMOTE_PROGRAM: &str = "{remote}";

fn value(key: &str, own: &Own<'_>, context: &Context) -> Result<String, String> {
    let path = |p: &PathBuf| p.display().to_string();
    Ok(match key {
        "bin_dir" => path(&context.bin_dir),
        "run_dir" => path(&context.run_dir),
        "log_dir" => path(&context.log_dir),
        "db" => context.db.clone(),
        "name" => own.name.to_owned(),
        "role" => own.role.as_str().to_owned(),
        "index" => own.index.to_string(),
        "ip" => own.ip.to_string(),
        "public_ip" => own.public_ip.to_string(),
        "nat" => own.nat.to_owned(),
        "seed" => seed(own.name),
        "api_key" => api_key(own.name),
        "key_file" => context
            .key_files
            .get(own.name)
            .map(path)
            .ok_or_else(|| format!("{{key_file}}: no key file for {}", own.name))?,
        _ => {
            if let Some(name) = key.strip_prefix("ip:") {
                let (_, ip) = context
                    .peers
                    .get(name)
                    .ok_or_else(|| format!("{{{key}}}: no peer named {name:?}"))?;
                ip.to_string()
            } else if let Some(name) = key.strip_prefix("peer_id:") {
                if !context.peers.contains_key(name) {
                    return Err(format!("{{{key}}}: no peer named {name:?}"));
                }
                peer_id(name)
            } else if let Some(role) = key.strip_prefix("ips:") {
                let ips: Vec<_> = context
                    .order
                    .iter()
                    .filter_map(|n| context.peers.get(n))
                    .filter(|(r, _)| r.as_str() == role)
                    .map(|(_, ip)| ip.to_string())
                    .collect();
                if ips.is_empty() {
                    return Err(format!("{{{key}}}: no peer has role {role:?}"));
                }
                ips.join(",")
            } else {
                return Err(format!("unknown placeholder {{{key}}}"));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        let mut peers = BTreeMap::new();
        peers.insert("relay".into(), (Role::Relay, Ipv4Addr::new(11, 0, 0, 10)));
        peers.insert(
            "boot1".into(),
            (Role::Bootstrap, Ipv4Addr::new(11, 0, 0, 11)),
        );
        peers.insert(
            "boot2".into(),
            (Role::Bootstrap, Ipv4Addr::new(11, 0, 0, 12)),
        );
        Context {
            bin_dir: "/opt/punchr".into(),
            run_dir: "/tmp/run".into(),
            log_dir: "/tmp/run/logs".into(),
            peers,
            order: vec!["relay".into(), "boot1".into(), "boot2".into()],
            key_files: BTreeMap::new(),
            db: "/tmp/run/punchr.sqlite".into(),
            local_db: None,
            peers_dir: "/peers".into(),
        }
    }

    fn own() -> Own<'static> {
        Own {
            name: "remote1",
            role: Role::Remote,
            index: 4,
            ip: Ipv4Addr::new(192, 168, 1, 10),
            public_ip: Ipv4Addr::new(11, 0, 1, 10),
            nat: "symmetric",
            implementation: Implementation::Rust,
        }
    }

    #[test]
    fn expands_words_and_placeholders() {
        let argv = expand_command(
            "{bin_dir}/punchr-lab remote-peer --relay {ip:relay} --bootstrap {ips:bootstrap} \
             --label 'nat {nat} at {ip}' --json '{{\"a\":1}}'",
            &own(),
            &context(),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "/opt/punchr/punchr-lab",
                "remote-peer",
                "--relay",
                "11.0.0.10",
                "--bootstrap",
                "11.0.0.11,11.0.0.12",
                "--label",
                "nat symmetric at 192.168.1.10",
                "--json",
                "{\"a\":1}",
            ]
        );
    }

    #[test]
    fn peer_ids_are_stable_and_distinct() {
        let relay = expand("{peer_id:relay}", &own(), &context()).unwrap();
        assert!(relay.starts_with("12D3KooW"), "{relay}");
        assert_eq!(relay, peer_id("relay"));
        assert_ne!(relay, peer_id("boot1"));
        assert_eq!(
            expand("{seed}", &own(), &context()).unwrap(),
            "punchr-lab/remote1"
        );
    }

    #[test]
    fn api_keys_are_stable_distinct_uuids() {
        let key = expand("{api_key}", &own(), &context()).unwrap();
        assert_eq!(key, api_key("remote1"));
        assert_ne!(key, api_key("remote2"));
        let groups: Vec<usize> = key.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{key}");
        assert!(key.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(key.as_bytes()[14], b'4', "version 4: {key}");
    }

    #[test]
    fn reports_mistakes() {
        let c = context();
        assert!(expand("{nope}", &own(), &c)
            .unwrap_err()
            .contains("unknown placeholder"));
        assert!(expand("{ip:ghost}", &own(), &c)
            .unwrap_err()
            .contains("ghost"));
        assert!(expand("{ips:honeypot}", &own(), &c)
            .unwrap_err()
            .contains("honeypot"));
        assert!(expand("{ip", &own(), &c).unwrap_err().contains("unclosed"));
        assert!(split_words("a 'b").unwrap_err().contains("unterminated"));
        assert!(split_words("   ").is_err());
    }
}
