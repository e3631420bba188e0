//! The Punchr side of a campaign ([`Hooks`]): labels every client host and remote peer with the
//! NAT type it sits behind in the campaign database (`lab_labels`), ends the campaign once the
//! wanted number of punches is stored, or once every cell holds the wanted number of decided
//! punches, and reads the results back as the [`measured`] report.
//!
//! Identities are known in advance: a client with `--seed S` runs hosts `from_seed(S, 0..n)`,
//! a remote peer `from_seed(S, 0)`, and the lab hands every peer the seed `punchr-lab/<name>`.
//! A client program the lab cannot give an identity (an original client, which draws its own)
//! is labelled by its API key instead: every host registered with a client peer's `{api_key}`
//! gets that peer's NAT type before the results are read.

use std::path::PathBuf;

use punchr_report::nat_labels::{CellTransport, ImplementationRow, NatCell};
use punchr_store::{ApiKeySecret, ReadOnlyStore, Store};
use sqlx::Row;

use crate::campaign::Hooks;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::measured::{self, Cell};
use crate::scenario::{Campaign, Role};
use crate::template::{self, Context};
use crate::theory::Transport;
use punchr_types::log_target::LAB;

/// A cell of the campaign: (client NAT, remote NAT, remote implementation, transport).
type CellKey = (String, String, String, CellTransport);

/// Labels, progress and results of a Punchr campaign.
#[derive(Debug)]
pub struct Collector {
    hosts_per_client: u32,
    punches: Option<u64>,
    per_cell: Option<u64>,
    transports: Vec<Transport>,
    /// The cells the campaign covers, known once it started.
    planned_cells: Vec<CellKey>,
    html: Option<PathBuf>,
    runtime: tokio::runtime::Runtime,
    store: Option<Store>,
    /// Its read-only handle, for the report's queries.
    reader: Option<ReadOnlyStore>,
    /// The measured cells, once collected.
    pub cells: Vec<Cell>,
    /// The punches by remote implementation, role strategy and transport, once collected.
    pub implementations: Vec<ImplementationRow>,
    /// Where the HTML report went, once written.
    pub html_written: Option<PathBuf>,
}

impl Collector {
    /// A collector for clients of `hosts_per_client` hosts that ends the campaign after
    /// `punches` stored results (if given) and writes the HTML report to `html` (default:
    /// `report.html` in the run directory).
    pub fn new(hosts_per_client: u32, punches: Option<u64>, html: Option<PathBuf>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LabError::io("starting the collector's runtime", e))?;
        Ok(Collector {
            hosts_per_client,
            punches,
            per_cell: None,
            transports: vec![Transport::Tcp, Transport::Quic],
            planned_cells: Vec::new(),
            html,
            runtime,
            store: None,
            reader: None,
            cells: Vec::new(),
            implementations: Vec::new(),
            html_written: None,
        })
    }

    /// A collector for `campaign`'s clients, punch count and punches per cell.
    pub fn for_campaign(campaign: &Campaign, html: Option<PathBuf>) -> Result<Self> {
        let mut collector = Self::new(campaign.hosts_per_client, campaign.punches, html)?;
        collector.per_cell = campaign.per_cell;
        collector.transports = campaign.transports.clone();
        Ok(collector)
    }

    /// Every (client NAT, remote NAT, remote implementation, transport) the lab's peers and
    /// the campaign's transports make.
    fn cells_of(lab: &Lab, transports: &[Transport]) -> Vec<CellKey> {
        let peers = &lab.plan().peers;
        let mut cells = Vec::new();
        for client in peers.iter().filter(|p| p.role == Role::Client) {
            for remote in peers.iter().filter(|p| p.role == Role::Remote) {
                for transport in transports {
                    cells.push((
                        client.nat.as_str().to_owned(),
                        remote.nat.as_str().to_owned(),
                        remote.implementation.name().to_owned(),
                        cell_transport(*transport),
                    ));
                }
            }
        }
        cells.sort();
        cells.dedup();
        cells
    }

    /// Whether every planned cell holds `wanted` decided punches.
    fn every_cell_has(&self, cells: &[NatCell], wanted: u64) -> bool {
        self.planned_cells
            .iter()
            .all(|(client, remote, implementation, transport)| {
                cells.iter().any(|c| {
                    &c.client_nat == client
                        && &c.remote_nat == remote
                        && &c.remote_impl == implementation
                        && c.transport == *transport
                        && c.outcomes.success + c.outcomes.failed >= wanted
                })
            })
    }

    fn store(&self) -> Result<&Store> {
        self.store
            .as_ref()
            .ok_or_else(|| LabError::Collect("the campaign database is not open".into()))
    }

    fn reader(&self) -> Result<&ReadOnlyStore> {
        self.reader
            .as_ref()
            .ok_or_else(|| LabError::Collect("the campaign database is not open".into()))
    }

    /// Every remote's (peer ID, implementation).
    fn implementations(lab: &Lab) -> Vec<(String, &'static str)> {
        lab.plan()
            .peers
            .iter()
            .filter(|p| p.role == Role::Remote)
            .map(|p| (template::peer_id(&p.name), p.implementation.name()))
            .collect()
    }

    /// Every (peer ID, NAT type, note) the campaign runs.
    fn labels(&self, lab: &Lab) -> Vec<(String, String, String)> {
        let mut labels = Vec::new();
        for peer in &lab.plan().peers {
            let seed = template::seed(&peer.name);
            let hosts = match peer.role {
                Role::Client => self.hosts_per_client,
                Role::Remote => 1,
                _ => continue,
            };
            for index in 0..hosts {
                let key = punchr_keyfile::from_seed(seed.as_bytes(), index);
                labels.push((
                    key.public().to_peer_id().to_string(),
                    peer.nat.as_str().to_owned(),
                    format!("{} {} host {index}", lab.id(), peer.name),
                ));
            }
        }
        labels
    }

    /// Labels the hosts registered with each client peer's `{api_key}` (see
    /// [`template::api_key`]); returns how many.
    async fn label_by_api_key(store: &Store, lab: &Lab) -> Result<usize> {
        let failed =
            |e: &dyn std::fmt::Display| LabError::Collect(format!("labelling by API key: {e}"));
        let mut labelled = 0;
        for peer in lab
            .plan()
            .peers
            .iter()
            .filter(|p| matches!(p.role, Role::Client))
        {
            let secret = ApiKeySecret::new(template::api_key(&peer.name));
            let Some(key) = store.find_api_key(&secret).await.map_err(|e| failed(&e))? else {
                continue;
            };
            let rows = sqlx::query(
                "SELECT p.peer_id FROM client_hosts h JOIN peers p ON p.id = h.peer_id \
                 WHERE h.api_key_id = $1",
            )
            .bind(key.id)
            .fetch_all(store.pool())
            .await
            .map_err(|e| failed(&e))?;
            for row in rows {
                let host: String = row.try_get(0).map_err(|e| failed(&e))?;
                let note = format!("{} {} by API key", lab.id(), peer.name);
                store
                    .label_lab_peer(&host, peer.nat.as_str(), Some(&note))
                    .await
                    .map_err(|e| failed(&e))?;
                labelled += 1;
            }
        }
        Ok(labelled)
    }

    async fn stored_results(store: &Store) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM hole_punch_results")
            .fetch_one(store.pool())
            .await
            .map_err(|e| LabError::Collect(format!("counting results: {e}")))?;
        let count: i64 = row
            .try_get(0)
            .map_err(|e| LabError::Collect(format!("counting results: {e}")))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

impl Hooks for Collector {
    fn started(&mut self, lab: &Lab, context: &Context) -> Result<()> {
        let labels = self.labels(lab);
        let implementations = Self::implementations(lab);
        let (store, reader) = self.runtime.block_on(async {
            // The server created the database and applied the migrations before it listened.
            let db = context.local_db.as_deref().unwrap_or(&context.db);
            let store = Store::open(db)
                .await
                .map_err(|e| LabError::Collect(format!("opening {db}: {e}")))?;
            for (peer_id, nat, note) in &labels {
                store
                    .label_lab_peer(peer_id, nat, Some(note))
                    .await
                    .map_err(|e| LabError::Collect(format!("labelling {peer_id}: {e}")))?;
            }
            for (peer_id, implementation) in &implementations {
                store
                    .label_lab_implementation(peer_id, implementation)
                    .await
                    .map_err(|e| LabError::Collect(format!("labelling {peer_id}: {e}")))?;
            }
            // The read-only pool starts its upkeep task on the runtime, so it is made in it.
            let reader = store.read_only();
            Ok::<_, LabError>((store, reader))
        })?;
        tracing::info!(target: LAB, event = "peers_labelled", peers = labels.len(), "labelled peers with their NAT types");
        self.reader = Some(reader);
        self.store = Some(store);
        self.planned_cells = Self::cells_of(lab, &self.transports);
        Ok(())
    }

    /// Done once every goal given (results stored, decided punches per cell) is met.
    fn done(&mut self, _lab: &Lab) -> Result<bool> {
        if self.punches.is_none() && self.per_cell.is_none() {
            return Ok(false);
        }
        let store = self.store()?;
        if let Some(wanted) = self.punches {
            if self.runtime.block_on(Self::stored_results(store))? < wanted {
                return Ok(false);
            }
        }
        if let Some(wanted) = self.per_cell {
            let cells = self
                .runtime
                .block_on(punchr_report::nat_labels::nat_cells(self.reader()?))
                .map_err(|e| LabError::Collect(format!("reading results: {e}")))?;
            if !self.every_cell_has(&cells, wanted) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn collect(&mut self, lab: &Lab, _context: &Context) -> Result<Vec<String>> {
        let (store, reader) = (self.store()?, self.reader()?);
        let (stored, measured) = self.runtime.block_on(async {
            let by_key = Self::label_by_api_key(store, lab).await?;
            tracing::info!(target: LAB, event = "hosts_labelled", hosts = by_key, "labelled client hosts by their API key");
            let stored = Self::stored_results(store).await?;
            let cells = punchr_report::nat_labels::nat_cells(reader)
                .await
                .map_err(|e| LabError::Collect(format!("reading results: {e}")))?;
            let implementations = punchr_report::nat_labels::implementation_rows(reader)
                .await
                .map_err(|e| LabError::Collect(format!("reading results: {e}")))?;
            Ok::<_, LabError>((stored, (cells, implementations)))
        })?;
        let (measured, implementations) = measured;
        self.cells = measured::cells(measured, crate::campaign::client_role_strategy(lab.plan()));
        self.implementations = implementations;
        let summary = format!(
            "lab run {} ({}): {stored} results stored",
            lab.id(),
            lab.plan().describe().lines().next().unwrap_or_default()
        );
        let path = self
            .html
            .clone()
            .unwrap_or_else(|| lab.run_dir().join("report.html"));
        let html = measured::render_html(
            "Punchr lab campaign",
            &summary,
            &self.cells,
            &self.implementations,
        );
        std::fs::write(&path, html)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        let mut lines: Vec<String> = measured::render_text(&self.cells)
            .lines()
            .chain(measured::render_implementations_text(&self.implementations).lines())
            .map(str::to_owned)
            .collect();
        lines.push(format!("HTML report: {}", path.display()));
        self.html_written = Some(path);
        Ok(lines)
    }
}

fn cell_transport(transport: Transport) -> CellTransport {
    match transport {
        Transport::Tcp => CellTransport::Tcp,
        Transport::Quic => CellTransport::Quic,
    }
}

#[cfg(test)]
mod tests {
    use punchr_report::OutcomeCounts;

    use super::*;

    fn cell(
        client: &str,
        implementation: &str,
        transport: CellTransport,
        decided: (u64, u64),
    ) -> NatCell {
        NatCell {
            client_nat: client.into(),
            remote_nat: "port-restricted".into(),
            remote_impl: implementation.into(),
            transport,
            outcomes: OutcomeCounts {
                success: decided.0,
                failed: decided.1,
                connection_reversed: 50,
                ..OutcomeCounts::default()
            },
            median_time_to_direct_ns: None,
            median_relayed_rtt_ns: None,
        }
    }

    /// Every planned cell needs its decided punches; undecided ones (reversals) never count,
    /// and a cell with no punches at all holds the campaign open.
    #[test]
    fn per_cell_goal_counts_decided_punches_of_every_planned_cell() {
        let mut collector = Collector::new(1, None, None).unwrap();
        collector.per_cell = Some(3);
        collector.planned_cells = vec![
            (
                "full-cone".into(),
                "port-restricted".into(),
                "kubo".into(),
                CellTransport::Tcp,
            ),
            (
                "full-cone".into(),
                "port-restricted".into(),
                "kubo".into(),
                CellTransport::Quic,
            ),
        ];
        let tcp = cell("full-cone", "kubo", CellTransport::Tcp, (2, 1));
        let quic = |decided| cell("full-cone", "kubo", CellTransport::Quic, decided);
        assert!(!collector.every_cell_has(std::slice::from_ref(&tcp), 3));
        assert!(!collector.every_cell_has(&[tcp.clone(), quic((2, 0))], 3));
        assert!(collector.every_cell_has(&[tcp.clone(), quic((0, 3))], 3));
        let other_impl = cell("full-cone", "go-v0.52", CellTransport::Quic, (9, 0));
        assert!(!collector.every_cell_has(&[tcp, other_impl], 3));
    }
}
