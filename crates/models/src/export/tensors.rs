//! Moving parameters between a [`FepModel`] and host tensors in PyTorch names and layout.
//!
//! The model is walked with Burn's `ModuleVisitor` / `ModuleMapper`, which report every
//! float parameter and running statistic with the path of module fields leading to it;
//! enum variants (`Encoder::Small`, `Classifier::Mlp`, ...) are left out of the path, so
//! that it is the one [`super::names::param_names`] lists.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::error::ExportError;
use super::file::{HostData, HostTensor};
use super::names::{Layout, ParamName, param_names};
use crate::model::FepModel;

/// The module path of the parameter being visited, enum variants left out.
#[derive(Default)]
struct PathStack(Vec<String>);

impl PathStack {
    fn enter(&mut self, name: &str, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.0.push(name.to_string());
        }
    }

    fn exit(&mut self, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.0.pop();
        }
    }

    fn path(&self) -> String {
        self.0.join(".")
    }
}

/// Collects every float tensor of a module with its path.
struct Collect {
    path: PathStack,
    tensors: Vec<(String, TensorData)>,
}

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.tensors
            .push((self.path.path(), param.val().into_data()));
    }
}

/// Replaces every float tensor of a module whose path is a key of `values`.
struct Replace {
    path: PathStack,
    values: HashMap<String, TensorData>,
}

impl<B: Backend> ModuleMapper<B> for Replace {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(data) = self.values.remove(&self.path.path()) else {
            return param;
        };
        let (id, old, mapper) = param.consume();
        let grad = old.is_require_grad();
        let new = Tensor::<B, D>::from_data(data, &old.device()).set_require_grad(grad);
        Param::from_mapped_value(id, new, mapper)
    }
}

/// `[a, b]` row-major -> `[b, a]` row-major.
fn transpose(values: &[f32], [a, b]: [usize; 2]) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for i in 0..a {
        for j in 0..b {
            out[j * a + i] = values[i * b + j];
        }
    }
    out
}

/// The PyTorch shape of a Burn tensor of `shape` under `layout`.
fn torch_shape(shape: &[usize], layout: Layout) -> Vec<usize> {
    match (layout, shape) {
        (Layout::Transposed, [a, b]) => vec![*b, *a],
        _ => shape.to_vec(),
    }
}

/// The model's float tensors by Burn path, checked against the name table: every tensor
/// has a PyTorch name and every name a tensor.
fn collect_checked<B: Backend>(
    model: &FepModel<B>,
) -> Result<(Vec<ParamName>, HashMap<String, TensorData>), ExportError> {
    let config = model.config();
    let architecture = config.architecture.name().to_string();
    // A BatchNorm's running statistics hold the updates of its last training-mode passes
    // apart until they are synchronised, which `into_record` does (the clone shares them);
    // a visitor alone would read the values from before those updates.
    let _ = model.clone().into_record();
    let mut collect = Collect {
        path: PathStack::default(),
        tensors: Vec::new(),
    };
    model.visit(&mut collect);
    let names = param_names(config);
    let known: HashMap<&str, &ParamName> = names.iter().map(|n| (n.fep.as_str(), n)).collect();
    if let Some((path, _)) = collect
        .tensors
        .iter()
        .find(|(p, _)| !known.contains_key(p.as_str()))
    {
        return Err(ExportError::Unmapped {
            architecture,
            path: path.clone(),
        });
    }
    let tensors: HashMap<String, TensorData> = collect.tensors.into_iter().collect();
    if let Some(n) = names.iter().find(|n| !tensors.contains_key(&n.fep)) {
        return Err(ExportError::NotInModel {
            architecture,
            path: n.fep.clone(),
            name: n.torch.clone(),
        });
    }
    Ok((names, tensors))
}

/// Every parameter and running statistic of `model` under its PyTorch name, in PyTorch
/// layout (`nn.Linear` weights transposed to `[out, in]`), as f32 values bit for bit.
pub fn to_torch_tensors<B: Backend>(
    model: &FepModel<B>,
) -> Result<BTreeMap<String, HostTensor>, ExportError> {
    let (names, mut tensors) = collect_checked(model)?;
    let mut out = BTreeMap::new();
    for n in names {
        let Some(data) = tensors.remove(&n.fep) else {
            continue; // checked in collect_checked
        };
        let shape = data.shape.to_vec();
        let values = data
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| ExportError::Backend {
                name: n.torch.clone(),
                reason: format!("{e:?}"),
            })?;
        let values = match (n.layout, shape.as_slice()) {
            (Layout::Transposed, [a, b]) => transpose(&values, [*a, *b]),
            _ => values,
        };
        out.insert(
            n.torch,
            HostTensor::f32(torch_shape(&shape, n.layout), values),
        );
    }
    Ok(out)
}

/// The closest expected name to `name` (same module or same parameter), as a hint.
fn closest<'a>(name: &str, expected: impl Iterator<Item = &'a String>) -> String {
    let (module, param) = name.rsplit_once('.').unwrap_or(("", name));
    let mut candidates = expected.filter(|e| {
        let (m, p) = e.rsplit_once('.').unwrap_or(("", e));
        m == module || (p == param && (m.contains(module) || module.contains(m)))
    });
    candidates
        .next()
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// The model's tensors as `(Burn path, PyTorch name, layout, Burn shape, PyTorch shape)`.
type Expected = Vec<(ParamName, Vec<usize>, Vec<usize>)>;

fn expected_shapes<B: Backend>(model: &FepModel<B>) -> Result<Expected, ExportError> {
    let (names, current) = collect_checked(model)?;
    Ok(names
        .into_iter()
        .filter_map(|n| {
            let burn = current.get(&n.fep)?.shape.to_vec();
            let torch = torch_shape(&burn, n.layout);
            Some((n, burn, torch))
        })
        .collect())
}

/// The values of the file's tensor `t` for parameter `n` in Burn's layout, if its element
/// type is F32 and its shape `expected` (PyTorch's).
fn checked_values(
    file: &Path,
    n: &ParamName,
    t: HostTensor,
    expected: &[usize],
) -> Result<Vec<f32>, ExportError> {
    let HostData::F32(v) = t.data else {
        return Err(ExportError::Dtype {
            file: file.to_path_buf(),
            name: n.torch.clone(),
            found: t.data.dtype_name().into(),
            expected: "F32".into(),
        });
    };
    if t.shape != expected {
        return Err(ExportError::Shape {
            file: file.to_path_buf(),
            name: n.torch.clone(),
            found: t.shape,
            expected: expected.to_vec(),
        });
    }
    Ok(match (n.layout, expected) {
        (Layout::Transposed, [a, b]) => transpose(&v, [*a, *b]),
        _ => v,
    })
}

/// Loads `tensors` (PyTorch names and layout, from `file`) into `model`, replacing every
/// parameter and running statistic. Refused, naming the tensor: a missing or unexpected
/// name, another shape, another element type than F32. A BatchNorm's
/// `num_batches_tracked` (PyTorch's counter, unused at a fixed momentum) is ignored.
pub fn load_torch_tensors<B: Backend>(
    model: FepModel<B>,
    mut tensors: BTreeMap<String, HostTensor>,
    file: &Path,
) -> Result<FepModel<B>, ExportError> {
    let architecture = model.config().architecture.name().to_string();
    let expected = expected_shapes(&model)?;
    let known: Vec<&String> = expected.iter().map(|(n, _, _)| &n.torch).collect();
    // PyTorch's BatchNorm counter, which Burn has no use for (fixed momentum): a
    // `state_dict` saved as is carries one per BatchNorm, and it is dropped here.
    tensors.retain(|name, _| {
        !name
            .strip_suffix("num_batches_tracked")
            .is_some_and(|module| {
                known
                    .iter()
                    .any(|k| k.as_str() == format!("{module}running_mean"))
            })
    });
    let unexpected: Vec<String> = tensors
        .keys()
        .filter(|k| !known.contains(k))
        .cloned()
        .collect();
    let mut values = HashMap::new();
    for (n, burn_shape, torch_shape) in expected.iter().cloned() {
        let Some(t) = tensors.remove(&n.torch) else {
            let hint = match unexpected.as_slice() {
                [] => String::new(),
                u => format!(
                    "; the file has `{}`, which the model has no place for",
                    u.join("`, `")
                ),
            };
            return Err(ExportError::Missing {
                file: file.to_path_buf(),
                name: n.torch,
                expected: torch_shape,
                architecture,
                hint,
            });
        };
        let v = checked_values(file, &n, t, &torch_shape)?;
        values.insert(n.fep, TensorData::new(v, burn_shape));
    }
    if let Some(name) = unexpected.first() {
        return Err(ExportError::Unexpected {
            file: file.to_path_buf(),
            name: name.clone(),
            architecture,
            hint: closest(name, known.into_iter()),
        });
    }
    let mut replace = Replace {
        path: PathStack::default(),
        values,
    };
    let model = model.map(&mut replace);
    debug_assert!(replace.values.is_empty(), "every checked tensor is placed");
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_moves_rows_to_columns() {
        let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2, 3]
        assert_eq!(transpose(&m, [2, 3]), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(transpose(&transpose(&m, [2, 3]), [3, 2]), m.to_vec());
    }

    #[test]
    fn closest_names_the_same_module() {
        let expected = ["enc1.weight".to_string(), "enc1.bias".to_string()];
        assert_eq!(
            closest("enc1.wieght", expected.iter()),
            " (did you mean `enc1.weight`?)"
        );
        assert_eq!(closest("zzz.q", expected.iter()), "");
    }
}
