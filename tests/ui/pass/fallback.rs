// `fallback`: a second source answers when the function's own answer is an error; reference
// parameters and `self` are shared by both.
use syntra_cache::cached;

pub struct Svc {
    down: bool,
}

impl Svc {
    #[cached(ttl = 90, key = "cg:price:<id>_<vs>", fallback = self.from_binance(id, vs))]
    async fn price(&self, id: &str, vs: &str) -> Result<f64, String> {
        if self.down {
            return Err(format!("{id}: coingecko down"));
        }
        Ok(1.0)
    }

    async fn from_binance(&self, id: &str, vs: &str) -> Result<f64, String> {
        Ok((id.len() + vs.len()) as f64)
    }
}

#[cached(ttl = 90, fallback = async { Ok::<_, String>(0) })]
async fn free_fn(n: u32) -> Result<u32, String> {
    Err(format!("{n}: down"))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        assert_eq!(Svc { down: true }.price("btc", "usd").await, Ok(6.0));
        assert_eq!(Svc { down: false }.price("eth", "usd").await, Ok(1.0));
        assert_eq!(free_fn(7).await, Ok(0));
    });
}
