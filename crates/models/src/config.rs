//! Model configuration: architecture, likelihood of the decoder, prior, latent size.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The network family of the encoder and decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Two strided convolutions each way (1x28x28); trains on a 2-core CPU in minutes.
    /// The same layer shapes as the reference model of the benchmarks.
    MnistSmall,
    /// The DCGAN-style encoder and decoder of the authors' code (1x28x28, BatchNorm).
    MnistPaper,
    /// A small residual encoder and decoder for 3x32x32 images.
    CifarResnet,
}

impl Architecture {
    /// Image shape `[channels, height, width]` the architecture expects.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            Architecture::MnistSmall | Architecture::MnistPaper => [1, 28, 28],
            Architecture::CifarResnet => [3, 32, 32],
        }
    }

    /// Kebab-case name as in configs.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::MnistSmall => "mnist-small",
            Architecture::MnistPaper => "mnist-paper",
            Architecture::CifarResnet => "cifar-resnet",
        }
    }
}

/// The likelihood `d(x|z)` of the decoder; D is its negative log, summed over pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DecoderKind {
    /// Independent Bernoulli pixels with logits from the network; for binarised images.
    Bernoulli,
    /// Independent Gaussians with mean `sigmoid(network)` and fixed standard deviation
    /// `sigma`: `-log d = sum (x - mu)^2 / (2 sigma^2) + (n/2) log(2 pi sigma^2)`.
    /// With `sigma^2 = 1/2` the first term is the summed squared error of the authors' code.
    Gaussian {
        /// Fixed standard deviation of every pixel.
        sigma: f64,
    },
    /// A discretised logistic per sub-pixel over 256 bins of [-1, 1] (PixelCNN++ style,
    /// one component), mean and log-scale from the network.
    DiscretizedLogistic,
}

impl DecoderKind {
    /// Network output channels per image channel.
    pub fn params_per_channel(self) -> usize {
        match self {
            DecoderKind::DiscretizedLogistic => 2,
            _ => 1,
        }
    }
}

/// The prior `m(z)` of the rate `R = E KL(e(z|x) || m(z))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PriorKind {
    /// `N(0, I)`; the KL has a closed form.
    StandardNormal,
    /// A learnt mixture of `components` diagonal Gaussians; the KL is estimated by
    /// Monte Carlo on the same latent samples as D and C.
    Mixture {
        /// Number of mixture components.
        components: usize,
    },
    /// VampPrior: the uniform mixture of the encoder's posteriors at `pseudo_inputs`
    /// learnt pseudo-images; Monte Carlo KL.
    Vamp {
        /// Number of pseudo-inputs.
        pseudo_inputs: usize,
    },
}

/// The classifier `c(y|z)` on the latent sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ClassifierKind {
    /// Logits `W z + b` (the authors' code).
    #[default]
    Linear,
    /// One hidden ReLU layer: logits `W2 relu(W1 z + b1) + b2`.
    Mlp {
        /// Width of the hidden layer.
        hidden: usize,
    },
}

/// Everything that fixes the shapes of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Encoder/decoder family.
    pub architecture: Architecture,
    /// Dimension of the latent z.
    #[serde(default = "default_latent_dim")]
    pub latent_dim: usize,
    /// Number of classes of the classifier `c(y|z)`.
    #[serde(default = "default_num_classes")]
    pub num_classes: usize,
    /// Likelihood of the decoder.
    #[serde(default = "default_decoder")]
    pub decoder: DecoderKind,
    /// Prior of the rate.
    #[serde(default = "default_prior")]
    pub prior: PriorKind,
    /// Classifier on z.
    #[serde(default)]
    pub classifier: ClassifierKind,
}

fn default_latent_dim() -> usize {
    16
}
fn default_num_classes() -> usize {
    10
}
fn default_decoder() -> DecoderKind {
    DecoderKind::Bernoulli
}
fn default_prior() -> PriorKind {
    PriorKind::StandardNormal
}

impl ModelConfig {
    /// A configuration with the defaults (16-d latent, 10 classes, Bernoulli, N(0, I)).
    pub fn new(architecture: Architecture) -> Self {
        Self {
            architecture,
            latent_dim: default_latent_dim(),
            num_classes: default_num_classes(),
            decoder: default_decoder(),
            prior: default_prior(),
            classifier: ClassifierKind::Linear,
        }
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        if self.latent_dim == 0 || self.latent_dim > 4096 {
            return bad(format!(
                "latent_dim must be in 1..=4096, got {}",
                self.latent_dim
            ));
        }
        if self.num_classes < 2 {
            return bad(format!(
                "num_classes must be at least 2, got {}",
                self.num_classes
            ));
        }
        match self.decoder {
            DecoderKind::Gaussian { sigma } if !(sigma.is_finite() && sigma > 0.0) => {
                return bad(format!("decoder sigma must be positive, got {sigma}"));
            }
            _ => {}
        }
        if let ClassifierKind::Mlp { hidden: 0 } = self.classifier {
            return bad("an MLP classifier needs a hidden width of at least 1".into());
        }
        match self.prior {
            PriorKind::Mixture { components: 0 } => {
                return bad("a mixture prior needs at least one component".into());
            }
            PriorKind::Vamp { pseudo_inputs: 0 } => {
                return bad("a VampPrior needs at least one pseudo-input".into());
            }
            _ => {}
        }
        Ok(())
    }
}
