#![deny(warnings)]

use std::num::ParseIntError;
use syntra_cache::cached;

#[derive(Debug, PartialEq)]
enum Error {
    Empty,
    Parse(ParseIntError),
}

impl From<ParseIntError> for Error {
    fn from(e: ParseIntError) -> Self {
        Error::Parse(e)
    }
}

#[cached(ttl = 60, key = "numbers:parse:<text>")]
async fn parse(text: &str) -> Result<u64, Error> {
    if text.is_empty() {
        return Err(Error::Empty);
    }
    let n: u64 = text.parse()?;
    Ok(n * 2)
}

#[cached(ttl = 60, key = "numbers:boxed:<text>")]
async fn boxed(text: String) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    Ok(text.parse::<u64>()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parse("21").await, Ok(42));
    assert_eq!(parse("").await, Err(Error::Empty));
    assert!(matches!(parse("x").await, Err(Error::Parse(_))));
    assert_eq!(boxed("5".into()).await.unwrap(), 5);
}
