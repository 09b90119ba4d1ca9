//! One integration-test binary, a module per promise.

// The tests damage, copy and remove store files behind the engine's back: that is the point.
#![allow(clippy::disallowed_methods)]

mod durability;
mod fixtures;
mod named;
mod optimizer;
mod power;
mod recovery;
mod search;
mod shared;
mod sparse;
mod store;
mod stress;
