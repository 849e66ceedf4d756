//! The PyTorch names and layouts of every parameter of every architecture.
//!
//! A fep parameter is named by its Burn module path with the enum variants left out
//! (`encoder.conv1.weight`, `classifier.hidden.bias`, `mixture_prior.means`); its PyTorch
//! name is that of the `nn.Module`s of `benchmarks/peers/torch_reference.py` (`mnist-small`
//! is its reference model, `mnist-paper` its `Paper` network) and of
//! `benchmarks/peers/load_fep.py`, which builds every architecture:
//!
//! | fep layer | PyTorch module | parameters |
//! |---|---|---|
//! | `Conv2d` | `nn.Conv2d` | `weight` `[out, in, kh, kw]`, `bias` (same layout) |
//! | `ConvTranspose2d` | `nn.ConvTranspose2d` | `weight` `[in, out, kh, kw]`, `bias` (same layout) |
//! | `Linear` (`weight` `[in, out]`) | `nn.Linear` | `weight` `[out, in]` (the transpose), `bias` |
//! | `BatchNorm` | `nn.BatchNorm2d` | `gamma` -> `weight`, `beta` -> `bias`, `running_mean`, `running_var` |
//!
//! PyTorch's `num_batches_tracked` buffer is not written: Burn has none, and with a fixed
//! momentum (0.1) PyTorch never reads it.

use crate::config::{Architecture, ClassifierKind, ModelConfig, PriorKind};

/// How a tensor's values are laid out in the PyTorch file relative to Burn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The same shape and row-major order.
    Same,
    /// A matrix `[a, b]` in Burn is its transpose `[b, a]` in PyTorch (`nn.Linear` weights).
    Transposed,
}

/// One parameter: its Burn path, its PyTorch name and how the layouts relate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamName {
    /// Burn module path without enum variants, e.g. `encoder.head.weight`.
    pub fep: String,
    /// PyTorch `state_dict` key, e.g. `enc_fc.weight`.
    pub torch: String,
    /// Layout relation.
    pub layout: Layout,
}

/// The kinds of layer the networks are built from.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `Conv2d` or `ConvTranspose2d`: weight and bias in the same layout.
    Conv,
    /// `Linear`: the weight transposed.
    Linear,
    /// `BatchNorm` with its running statistics.
    BatchNorm,
}

/// A layer: its Burn path, its PyTorch module name and its kind.
type Layer = (String, String, Kind);

fn layer(fep: &str, torch: &str, kind: Kind) -> Layer {
    (fep.to_string(), torch.to_string(), kind)
}

fn small_layers() -> Vec<Layer> {
    vec![
        layer("encoder.conv1", "enc1", Kind::Conv),
        layer("encoder.conv2", "enc2", Kind::Conv),
        layer("encoder.head", "enc_fc", Kind::Linear),
        layer("decoder.fc", "dec_fc", Kind::Linear),
        layer("decoder.deconv1", "dec1", Kind::Conv),
        layer("decoder.deconv2", "dec2", Kind::Conv),
    ]
}

fn paper_layers() -> Vec<Layer> {
    let mut layers = Vec::new();
    for i in 1..=4 {
        layers.push(layer(
            &format!("encoder.conv{i}"),
            &format!("conv{i}"),
            Kind::Conv,
        ));
    }
    for i in [2, 3] {
        layers.push(layer(
            &format!("encoder.bn{i}"),
            &format!("bn_conv{i}"),
            Kind::BatchNorm,
        ));
    }
    for name in ["fc", "mean", "log_var"] {
        layers.push(layer(&format!("encoder.{name}"), name, Kind::Linear));
    }
    for name in ["fc1", "fc2"] {
        layers.push(layer(&format!("decoder.{name}"), name, Kind::Linear));
    }
    for i in 1..=4 {
        layers.push(layer(
            &format!("decoder.deconv{i}"),
            &format!("deconv{i}"),
            Kind::Conv,
        ));
    }
    for i in 1..=3 {
        layers.push(layer(
            &format!("decoder.bn{i}"),
            &format!("bn_deconv{i}"),
            Kind::BatchNorm,
        ));
    }
    layers
}

/// The two convolutions of each residual block of `side` (`encoder` or `decoder`), named
/// `enc_res<i>.conv<j>` / `dec_res<i>.conv<j>` in PyTorch.
fn residual_layers(side: &str, prefix: &str) -> Vec<Layer> {
    let mut layers = Vec::new();
    for i in 1..=3 {
        for j in 1..=2 {
            layers.push(layer(
                &format!("{side}.res{i}.conv{j}"),
                &format!("{prefix}_res{i}.conv{j}"),
                Kind::Conv,
            ));
        }
    }
    layers
}

fn resnet_layers() -> Vec<Layer> {
    let mut layers = vec![
        layer("encoder.stem", "enc_stem", Kind::Conv),
        layer("encoder.down1", "enc_down1", Kind::Conv),
        layer("encoder.down2", "enc_down2", Kind::Conv),
        layer("encoder.head", "enc_fc", Kind::Linear),
        layer("decoder.fc", "dec_fc", Kind::Linear),
        layer("decoder.up1", "dec_up1", Kind::Conv),
        layer("decoder.up2", "dec_up2", Kind::Conv),
        layer("decoder.out", "dec_out", Kind::Conv),
    ];
    layers.extend(residual_layers("encoder", "enc"));
    layers.extend(residual_layers("decoder", "dec"));
    layers
}

fn param(fep: String, torch: String, layout: Layout) -> ParamName {
    ParamName { fep, torch, layout }
}

/// Every parameter and running statistic of a model of `config`, with its PyTorch name.
pub fn param_names(config: &ModelConfig) -> Vec<ParamName> {
    let mut layers = match config.architecture {
        Architecture::MnistSmall => small_layers(),
        Architecture::MnistPaper => paper_layers(),
        Architecture::CifarResnet => resnet_layers(),
    };
    match config.classifier {
        ClassifierKind::Linear => layers.push(layer("classifier", "cls", Kind::Linear)),
        ClassifierKind::Mlp { .. } => {
            layers.push(layer("classifier.hidden", "cls_hidden", Kind::Linear));
            layers.push(layer("classifier.out", "cls", Kind::Linear));
        }
    }
    let mut names = Vec::new();
    for (fep, torch, kind) in layers {
        let pairs: &[(&str, &str, Layout)] = match kind {
            Kind::Conv => &[
                ("weight", "weight", Layout::Same),
                ("bias", "bias", Layout::Same),
            ],
            Kind::Linear => &[
                ("weight", "weight", Layout::Transposed),
                ("bias", "bias", Layout::Same),
            ],
            Kind::BatchNorm => &[
                ("gamma", "weight", Layout::Same),
                ("beta", "bias", Layout::Same),
                ("running_mean", "running_mean", Layout::Same),
                ("running_var", "running_var", Layout::Same),
            ],
        };
        for (f, t, layout) in pairs {
            names.push(param(format!("{fep}.{f}"), format!("{torch}.{t}"), *layout));
        }
    }
    let prior: &[(&str, &str)] = match config.prior {
        PriorKind::StandardNormal => &[],
        PriorKind::Mixture { .. } => &[
            ("mixture_prior.means", "prior.means"),
            ("mixture_prior.log_vars", "prior.log_vars"),
            ("mixture_prior.logits", "prior.logits"),
        ],
        PriorKind::Vamp { .. } => &[("vamp_prior.pseudo_logits", "prior.pseudo_logits")],
    };
    for (f, t) in prior {
        names.push(param(f.to_string(), t.to_string(), Layout::Same));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_reference_model_matches_torch_reference() {
        let mut config = ModelConfig::new(Architecture::MnistSmall);
        let names = param_names(&config);
        let torch: Vec<&str> = names.iter().map(|n| n.torch.as_str()).collect();
        // torch_reference.py's Reference: enc1, enc2, enc_fc, dec_fc, dec1, dec2, cls.
        for module in ["enc1", "enc2", "enc_fc", "dec_fc", "dec1", "dec2", "cls"] {
            for p in ["weight", "bias"] {
                assert!(
                    torch.contains(&format!("{module}.{p}").as_str()),
                    "{module}.{p}"
                );
            }
        }
        assert_eq!(torch.len(), 14);
        for arch in [Architecture::MnistPaper, Architecture::CifarResnet] {
            config.architecture = arch;
            config.classifier = ClassifierKind::Mlp { hidden: 8 };
            config.prior = PriorKind::Mixture { components: 3 };
            let names = param_names(&config);
            let mut t: Vec<&str> = names.iter().map(|n| n.torch.as_str()).collect();
            let mut f: Vec<&str> = names.iter().map(|n| n.fep.as_str()).collect();
            let n = t.len();
            t.sort_unstable();
            t.dedup();
            f.sort_unstable();
            f.dedup();
            assert_eq!((t.len(), f.len()), (n, n), "{arch:?}");
        }
    }
}
