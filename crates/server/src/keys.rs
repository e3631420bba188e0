//! `punchr-server keys …`: API key management from the command line.

use std::fmt::Write;

use punchr_store::{Store, StoreError};

use crate::config::KeysCommand;

/// Runs a key command and returns what to print.
pub async fn run(store: &Store, command: &KeysCommand) -> Result<String, StoreError> {
    match command {
        KeysCommand::Add { name } => {
            let (key, secret) = store.create_api_key(name).await?;
            Ok(format!(
                "Created API key {:?} (id {}). It is shown only this once; the server stores only its hash:\n{}\n",
                key.name,
                key.id,
                secret.expose()
            ))
        }
        KeysCommand::List => {
            let mut out = format!("{:<6} {:<24} {:<10} {:<9}\n", "id", "name", "kind", "state");
            for key in store.list_api_keys().await? {
                let kind = if key.anonymous { "anonymous" } else { "named" };
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{:<6} {:<24} {:<10} {:<9}",
                    key.id, key.name, kind, state
                )
                .expect("writing to a String");
            }
            Ok(out)
        }
        KeysCommand::Revoke { name, id } => {
            let key = match (name, id) {
                (_, Some(id)) => store.revoke_api_key_id(*id).await?,
                (Some(name), None) => store.revoke_api_key(name).await?,
                (None, None) => unreachable!("clap requires --name or --id"),
            };
            Ok(format!("Revoked API key {:?} (id {}).\n", key.name, key.id))
        }
    }
}
