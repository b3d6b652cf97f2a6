#![deny(warnings)]

use syntra_cache::cached;

struct Celsius;
struct Fahrenheit;

impl Celsius {
    #[cached(ttl = 60)]
    async fn boiling(scale: u32) -> Option<u32> {
        100u32.checked_mul(scale)
    }
}

impl Fahrenheit {
    #[cached(ttl = 60)]
    async fn boiling(scale: u32) -> Option<u32> {
        212u32.checked_mul(scale)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Celsius::boiling(1).await, Some(100));
    assert_eq!(Fahrenheit::boiling(2).await, Some(424));
}
