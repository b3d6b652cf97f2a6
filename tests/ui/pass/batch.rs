// A batch function in each parameter form, with a field placeholder and a freshness floor.
use std::collections::HashMap;
use syntra_cache::cached;

#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Pair {
    pub base: String,
    pub quote: String,
}

pub struct Svc;

impl Svc {
    #[cached(ttl = 90, max_ttl = "10m", key = "cg:price:<ids>_<vs>", batch = ids, max_batch = 250)]
    async fn slice(&self, ids: &[String], vs: &str) -> Result<HashMap<String, f64>, String> {
        Ok(ids.iter().map(|id| (id.clone(), vs.len() as f64)).collect())
    }

    #[cached(ttl = 90, key = "cg:owned:<ids>", batch = ids)]
    async fn owned(&self, ids: Vec<u64>) -> Result<HashMap<u64, u64>, String> {
        Ok(ids.into_iter().map(|id| (id, id * 2)).collect())
    }

    #[cached(ttl = 90, key = "bn:ticker:<pairs.base><pairs.quote>", batch = pairs)]
    async fn by_ref_vec(&self, pairs: &Vec<Pair>) -> Result<HashMap<Pair, f64>, String> {
        Ok(pairs.iter().map(|p| (p.clone(), 1.0)).collect())
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let got = Svc.slice(&["bitcoin".to_string()], "usd").await.unwrap();
        assert_eq!(got["bitcoin"], 3.0);
        assert_eq!(Svc.owned(vec![1, 2]).await.unwrap()[&2], 4);
        let pair = Pair { base: "BTC".into(), quote: "USDT".into() };
        assert_eq!(Svc.by_ref_vec(&vec![pair.clone()]).await.unwrap()[&pair], 1.0);
    });
}
