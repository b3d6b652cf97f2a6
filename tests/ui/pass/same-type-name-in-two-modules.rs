#![deny(warnings)]

mod coingecko {
    pub struct Client;

    impl Client {
        #[syntra_cache::cached(ttl = 60)]
        pub async fn get(&self, id: u64) -> Result<u64, String> {
            Ok(1000 + id)
        }
    }
}

mod binance {
    pub struct Client;

    impl Client {
        #[syntra_cache::cached(ttl = 60)]
        pub async fn get(&self, id: u64) -> Result<u64, String> {
            Ok(2000 + id)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(coingecko::Client.get(1).await, Ok(1001));
    assert_eq!(binance::Client.get(2).await, Ok(2002));
}
