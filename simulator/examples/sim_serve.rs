//! Runs the simulator in the foreground and prints its base URLs: `cargo run -p syntra-sim --example sim_serve [seed]`.
use syntra_sim::{Provider, SimConfig, Simulator};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(42);
    let sim = Simulator::start(SimConfig::seeded(seed)).await?;
    for p in Provider::ALL {
        println!("{p:<14} {}", sim.base_url(p));
    }
    let secs: u64 = std::env::var("SIM_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3600);
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    println!("{}", sim.calls());
    Ok(())
}
