//! A controller runtime on the informer (placeholder, filled in next).
mod queue;
