//! Return types the engine understands: what is cached and how a cached value becomes an answer.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// How a computed outcome is cached.
#[derive(Debug)]
pub enum Verdict<'a, V> {
    /// Cache this value.
    Keep(&'a V),
    /// A negative answer (`None`): cached only with a `none_ttl`.
    Negative,
    /// Not cacheable (an error).
    Skip,
}

/// A return type the cache understands: `Result<T, E>` caches `Ok`, `Option<T>` caches `Some`
/// (and `None` with a `none_ttl`), [`Plain<T>`] caches every value.
pub trait Outcome: Sized {
    /// The cached value.
    type Value: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// How this outcome is cached.
    fn verdict(&self) -> Verdict<'_, Self::Value>;
    /// The answer for a cached value.
    fn from_value(v: Self::Value) -> Self;
    /// The answer for a cached negative entry, if this type has one (`Option`'s `None`).
    fn negative() -> Option<Self> {
        None
    }
    /// Whether this outcome is a budget's denial (then any kept value is served, not only one
    /// within the stale window). Only the batch loader's items say yes.
    #[doc(hidden)]
    fn is_denied(&self) -> bool {
        false
    }
}

impl<T, E> Outcome for Result<T, E>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Value = T;
    fn verdict(&self) -> Verdict<'_, T> {
        match self {
            Ok(v) => Verdict::Keep(v),
            Err(_) => Verdict::Skip,
        }
    }
    fn from_value(v: T) -> Self {
        Ok(v)
    }
}

impl<T> Outcome for Option<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Value = T;
    fn verdict(&self) -> Verdict<'_, T> {
        match self {
            Some(v) => Verdict::Keep(v),
            None => Verdict::Negative,
        }
    }
    fn from_value(v: T) -> Self {
        Some(v)
    }
    fn negative() -> Option<Self> {
        Some(None)
    }
}

/// A return type cached as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain<T>(pub T);

impl<T> Outcome for Plain<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Value = T;
    fn verdict(&self) -> Verdict<'_, T> {
        Verdict::Keep(&self.0)
    }
    fn from_value(v: T) -> Self {
        Plain(v)
    }
}
