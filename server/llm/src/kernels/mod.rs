//! The arithmetic under the forward pass: quantised matmuls, activations, the thread pool.

pub mod activation;
pub mod int5;
pub mod linear;
pub mod parallel;
