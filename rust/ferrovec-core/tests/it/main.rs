//! One integration-test binary, a module per promise.

mod durability;
mod fixtures;
mod optimizer;
mod recovery;
mod search;
mod store;
