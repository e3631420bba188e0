//! NAT type labels for the lab: the lab knows which NAT each of its peers sits behind and writes
//! it into `lab_labels` (migration `0004_lab_labels.sql`); reports then split results by the
//! (client NAT, remote NAT) pair. Field campaigns leave the table empty and the split out.

use punchr_store::{now_unix_nanos, Store};
use sqlx::Row;

use crate::ReportError;

/// Labels the peer `peer_id` (base58, as stored in `peers.peer_id`) with `nat_type`, replacing
/// an earlier label.
pub async fn label_peer(
    store: &Store,
    peer_id: &str,
    nat_type: &str,
    note: Option<&str>,
) -> Result<(), ReportError> {
    sqlx::query(
        "INSERT INTO lab_labels (peer_id, nat_type, note, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (peer_id) DO UPDATE SET nat_type = excluded.nat_type, note = excluded.note",
    )
    .bind(peer_id)
    .bind(nat_type)
    .bind(note)
    .bind(now_unix_nanos())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The label of `peer_id`, if any.
pub async fn peer_label(store: &Store, peer_id: &str) -> Result<Option<String>, ReportError> {
    let row = sqlx::query("SELECT nat_type FROM lab_labels WHERE peer_id = $1")
        .bind(peer_id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}
