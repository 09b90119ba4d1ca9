//! One integration-test binary, a module per promise.

mod durability;
mod fixtures;
mod named;
mod optimizer;
mod power;
mod recovery;
mod search;
mod shared;
mod store;
mod stress;
