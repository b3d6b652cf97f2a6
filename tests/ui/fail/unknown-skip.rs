use syntra_cache::cached;

#[cached(ttl = 60, key = "users:name:<id>", skip(trace_id))]
async fn name(id: u64, trace: u64) -> Result<String, String> {
    Ok(format!("{id} {trace}"))
}

fn main() {}
