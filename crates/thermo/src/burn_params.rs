//! Flat parameter vectors of Burn modules: the bridge between a network and the
//! parameter-space algebra (tangents, conjugate gradients) of this crate.
//!
//! Parameters are visited in the module's declaration order, which is stable for a
//! given architecture, so a vector written by [`flatten_params`] can be loaded back
//! with [`load_params`] and gradients from [`flatten_gradients`] line up with it.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

use crate::error::{Result, ThermoError};

struct Flatten {
    out: Vec<f64>,
}

impl<B: Backend> ModuleVisitor<B> for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.out.extend(param.val().into_data().iter::<f64>());
    }
}

/// All float parameters of a module, concatenated.
pub fn flatten_params<B: Backend, M: Module<B>>(module: &M) -> Vec<f64> {
    let mut visitor = Flatten {
        out: Vec::with_capacity(module.num_params()),
    };
    module.visit(&mut visitor);
    visitor.out
}

struct FlattenOnDevice<B: Backend> {
    parts: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for FlattenOnDevice<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.parts.push(value.reshape([n]));
    }
}

/// [`flatten_params`] as one tensor on the module's device (nothing is read to the host):
/// the same values in the same order.
pub fn flatten_params_on_device<B: Backend, M: Module<B>>(module: &M) -> Tensor<B, 1> {
    let mut visitor = FlattenOnDevice { parts: Vec::new() };
    module.visit(&mut visitor);
    Tensor::cat(visitor.parts, 0)
}

struct Load<'a> {
    theta: &'a [f64],
    offset: usize,
    overflow: bool,
}

impl<B: Backend> ModuleMapper<B> for Load<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let len = shape.num_elements();
        if self.offset + len > self.theta.len() {
            self.overflow = true;
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let values: Vec<f32> = self.theta[self.offset..self.offset + len]
            .iter()
            .map(|&v| v as f32)
            .collect();
        self.offset += len;
        let require_grad = tensor.is_require_grad();
        let fresh = Tensor::<B, D>::from_data(TensorData::new(values, shape), &tensor.device());
        let fresh = if require_grad {
            fresh.require_grad()
        } else {
            fresh
        };
        Param::from_mapped_value(id, fresh, mapper)
    }
}

/// The module with its float parameters replaced by `theta` (same order as
/// [`flatten_params`]); gradient tracking is kept as it was.
pub fn load_params<B: Backend, M: Module<B>>(module: M, theta: &[f64]) -> Result<M> {
    let expected = module.num_params();
    if theta.len() != expected {
        return Err(ThermoError::model(format!(
            "parameter vector has {} entries but the module has {expected} parameters",
            theta.len()
        )));
    }
    let mut mapper = Load {
        theta,
        offset: 0,
        overflow: false,
    };
    let module = module.map(&mut mapper);
    if mapper.overflow || mapper.offset != theta.len() {
        return Err(ThermoError::model(
            "parameter vector does not match the module's float parameters",
        ));
    }
    Ok(module)
}

struct FlattenGrads<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    out: Vec<f64>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for FlattenGrads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        match value.grad(self.grads) {
            Some(g) => self.out.extend(g.into_data().iter::<f64>()),
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
        }
    }
}

/// The gradient of the last backward pass with respect to every float parameter,
/// in the order of [`flatten_params`] (zeros where a parameter got no gradient).
pub fn flatten_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &B::Gradients,
) -> Vec<f64> {
    let mut visitor = FlattenGrads {
        grads,
        out: Vec::with_capacity(module.num_params()),
    };
    module.visit(&mut visitor);
    visitor.out
}
