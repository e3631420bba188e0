//! The report's integration tests, one binary: reports over known datasets on both engines, the
//! dashboard in headless Chromium, the dashboards' queries against real PostgreSQL and Prometheus;
//! one module per area.

mod common;

mod dashboard;
mod grafana;
mod prometheus;
mod report;
