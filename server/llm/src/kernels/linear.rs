//! A projection by quantised weights, with the fastest kernel for each weight type.

use super::int5::Int5Matrix;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};

/// `x @ W^T` for a GGUF weight: our tiled kernel for `Q5_0`, candle's for everything else.
pub enum Linear {
    Candle(QMatMul),
    Int5(Int5Matrix),
}

impl Linear {
    pub fn new(weights: QTensor) -> Result<Self> {
        Ok(if weights.dtype() == GgmlDType::Q5_0 {
            Linear::Int5(Int5Matrix::from_q5_0(&weights)?)
        } else {
            Linear::Candle(QMatMul::from_qtensor(weights)?)
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Candle(m) => m.forward(x),
            Linear::Int5(m) => m.forward(x),
        }
    }
}
