//! The lab's labels (`lab_labels`, migration `0004_lab_labels.sql`): which NAT each of the lab's
//! peers sits behind and which libp2p implementation a remote runs, written by the lab's
//! collector so that reports can split results by them. Field campaigns never write it.

use crate::{now_unix_nanos, Result, Store};

impl Store {
    /// Labels the peer `peer_id` (base58, as stored in `peers.peer_id`) with the NAT type it
    /// sits behind, replacing an earlier label.
    pub async fn label_lab_peer(
        &self,
        peer_id: &str,
        nat_type: &str,
        note: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO lab_labels (peer_id, nat_type, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (peer_id) DO UPDATE SET nat_type = excluded.nat_type, note = excluded.note",
        )
        .bind(peer_id)
        .bind(nat_type)
        .bind(note)
        .bind(now_unix_nanos())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records which libp2p implementation the labelled remote `peer_id` runs (the lab's
    /// `impl`), so that reports split by it.
    pub async fn label_lab_implementation(
        &self,
        peer_id: &str,
        implementation: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE lab_labels SET implementation = $1 WHERE peer_id = $2")
            .bind(implementation)
            .bind(peer_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
