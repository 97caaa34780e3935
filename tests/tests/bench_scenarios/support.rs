//! A config for a campaign on the shared Redis, and the pieces of a bench command line.

use std::path::{Path, PathBuf};

use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::shared_redis_url;

/// A config for `campaign` on the shared Redis, written to `dir/gateway.toml`.
pub(crate) fn config_for(dir: &Path, campaign: CampaignSpec) -> (Scenario, PathBuf) {
    let scenario = Scenario::new(shared_redis_url(), dir.join("orders.db"), vec![campaign]);
    let config = dir.join("gateway.toml");
    std::fs::write(&config, scenario.toml()).unwrap();
    (scenario, config)
}

pub(crate) fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

pub(crate) fn target(addr: impl ToString, config: &Path, campaign: &str) -> Vec<String> {
    vec![
        "--addr".into(),
        addr.to_string(),
        "--config".into(),
        config.display().to_string(),
        "--campaign".into(),
        campaign.into(),
    ]
}
