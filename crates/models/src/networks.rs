//! Encoder and decoder networks. The encoder maps an image to the mean and log-variance
//! of a diagonal Gaussian `e(z|x)`; the decoder maps a latent sample to the per-pixel
//! parameters of the likelihood `d(x|z)` (`params_per_channel` maps per image channel).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::backend::Backend;

use crate::config::{Architecture, ClassifierKind, ModelConfig};

/// A convolution `c_in -> c_out` channels, kernel k, stride s, padding p.
fn conv<B: Backend>(
    [c_in, c_out]: [usize; 2],
    [k, s, p]: [usize; 3],
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([s, s])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device)
}

/// A transposed convolution `c_in -> c_out` channels, kernel k, stride s, padding p.
fn deconv<B: Backend>(
    [c_in, c_out]: [usize; 2],
    [k, s, p]: [usize; 3],
    device: &B::Device,
) -> ConvTranspose2d<B> {
    ConvTranspose2dConfig::new([c_in, c_out], [k, k])
        .with_stride([s, s])
        .with_padding([p, p])
        .init(device)
}

fn linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out).init(device)
}

fn split_moments<B: Backend>(out: Tensor<B, 2>, latent: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let mean = out.clone().narrow(1, 0, latent);
    let log_var = out.narrow(1, latent, latent);
    (mean, log_var)
}

/// `mnist-small` encoder: Conv(1->32, k4 s2 p1)+ReLU, Conv(32->64, k4 s2 p1)+ReLU,
/// Linear(64*7*7 -> 2L).
#[derive(Module, Debug)]
pub struct SmallEncoder<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    head: Linear<B>,
    latent: usize,
}

impl<B: Backend> SmallEncoder<B> {
    fn new(latent: usize, device: &B::Device) -> Self {
        Self {
            conv1: conv([1, 32], [4, 2, 1], device),
            conv2: conv([32, 64], [4, 2, 1], device),
            head: linear(64 * 7 * 7, 2 * latent, device),
            latent,
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let h = relu(self.conv1.forward(x));
        let h = relu(self.conv2.forward(h));
        let h: Tensor<B, 2> = h.flatten(1, 3);
        split_moments(self.head.forward(h), self.latent)
    }
}

/// `mnist-small` decoder: Linear(L -> 64*7*7)+ReLU, ConvT(64->32, k4 s2 p1)+ReLU,
/// ConvT(32->out, k4 s2 p1).
#[derive(Module, Debug)]
pub struct SmallDecoder<B: Backend> {
    fc: Linear<B>,
    deconv1: ConvTranspose2d<B>,
    deconv2: ConvTranspose2d<B>,
}

impl<B: Backend> SmallDecoder<B> {
    fn new(latent: usize, out_channels: usize, device: &B::Device) -> Self {
        Self {
            fc: linear(latent, 64 * 7 * 7, device),
            deconv1: deconv([64, 32], [4, 2, 1], device),
            deconv2: deconv([32, out_channels], [4, 2, 1], device),
        }
    }

    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 4> {
        let n = z.dims()[0];
        let h = relu(self.fc.forward(z)).reshape([n, 64, 7, 7]);
        let h = relu(self.deconv1.forward(h));
        self.deconv2.forward(h)
    }
}

/// `mnist-paper` encoder (the authors' DCGAN-style net): Conv(1->64, k4 s2 p1), LReLU;
/// Conv(64->128, k4 s2 p1)+BN+LReLU; Conv(128->256, k3 s2 p1)+BN+LReLU;
/// Conv(256->1024, k4 s1 p0)+LReLU; Linear(1024->512)+LReLU; Linear(512->L) twice
/// (mean, log-variance). LReLU slope 0.2.
#[derive(Module, Debug)]
pub struct PaperEncoder<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    bn2: BatchNorm<B>,
    conv3: Conv2d<B>,
    bn3: BatchNorm<B>,
    conv4: Conv2d<B>,
    fc: Linear<B>,
    mean: Linear<B>,
    log_var: Linear<B>,
}

impl<B: Backend> PaperEncoder<B> {
    fn new(latent: usize, device: &B::Device) -> Self {
        Self {
            conv1: conv([1, 64], [4, 2, 1], device),
            conv2: conv([64, 128], [4, 2, 1], device),
            bn2: BatchNormConfig::new(128).init(device),
            conv3: conv([128, 256], [3, 2, 1], device),
            bn3: BatchNormConfig::new(256).init(device),
            conv4: conv([256, 1024], [4, 1, 0], device),
            fc: linear(1024, 512, device),
            mean: linear(512, latent, device),
            log_var: linear(512, latent, device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let h = leaky_relu(self.conv1.forward(x), 0.2);
        let h = leaky_relu(self.bn2.forward(self.conv2.forward(h)), 0.2);
        let h = leaky_relu(self.bn3.forward(self.conv3.forward(h)), 0.2);
        let h = leaky_relu(self.conv4.forward(h), 0.2);
        let h: Tensor<B, 2> = h.flatten(1, 3);
        let h = leaky_relu(self.fc.forward(h), 0.2);
        (self.mean.forward(h.clone()), self.log_var.forward(h))
    }
}

/// `mnist-paper` decoder: Linear(L->512)+ReLU, Linear(512->1024)+ReLU, then
/// ConvT(1024->512, k4 s1 p0), ConvT(512->256, k3 s2 p1), ConvT(256->128, k4 s2 p1),
/// ConvT(128->out, k4 s2 p1), with BN+ReLU between.
#[derive(Module, Debug)]
pub struct PaperDecoder<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
    deconv1: ConvTranspose2d<B>,
    bn1: BatchNorm<B>,
    deconv2: ConvTranspose2d<B>,
    bn2: BatchNorm<B>,
    deconv3: ConvTranspose2d<B>,
    bn3: BatchNorm<B>,
    deconv4: ConvTranspose2d<B>,
}

impl<B: Backend> PaperDecoder<B> {
    fn new(latent: usize, out_channels: usize, device: &B::Device) -> Self {
        Self {
            fc1: linear(latent, 512, device),
            fc2: linear(512, 1024, device),
            deconv1: deconv([1024, 512], [4, 1, 0], device),
            bn1: BatchNormConfig::new(512).init(device),
            deconv2: deconv([512, 256], [3, 2, 1], device),
            bn2: BatchNormConfig::new(256).init(device),
            deconv3: deconv([256, 128], [4, 2, 1], device),
            bn3: BatchNormConfig::new(128).init(device),
            deconv4: deconv([128, out_channels], [4, 2, 1], device),
        }
    }

    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 4> {
        let n = z.dims()[0];
        let h = relu(self.fc1.forward(z));
        let h = relu(self.fc2.forward(h)).reshape([n, 1024, 1, 1]);
        let h = relu(self.bn1.forward(self.deconv1.forward(h)));
        let h = relu(self.bn2.forward(self.deconv2.forward(h)));
        let h = relu(self.bn3.forward(self.deconv3.forward(h)));
        self.deconv4.forward(h)
    }
}

/// A residual block `x + Conv3x3(ReLU(Conv3x3(ReLU(x))))` at constant width.
#[derive(Module, Debug)]
pub struct ResidualBlock<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
}

impl<B: Backend> ResidualBlock<B> {
    fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            conv1: conv([channels, channels], [3, 1, 1], device),
            conv2: conv([channels, channels], [3, 1, 1], device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self.conv1.forward(relu(x.clone()));
        x + self.conv2.forward(relu(h))
    }
}

/// `cifar-resnet` encoder for 3x32x32: Conv(3->32, k3 p1), Res(32), Conv(32->64, k4 s2 p1),
/// Res(64), Conv(64->128, k4 s2 p1), Res(128), ReLU, Linear(128*8*8 -> 2L).
#[derive(Module, Debug)]
pub struct ResnetEncoder<B: Backend> {
    stem: Conv2d<B>,
    res1: ResidualBlock<B>,
    down1: Conv2d<B>,
    res2: ResidualBlock<B>,
    down2: Conv2d<B>,
    res3: ResidualBlock<B>,
    head: Linear<B>,
    latent: usize,
}

impl<B: Backend> ResnetEncoder<B> {
    fn new(latent: usize, device: &B::Device) -> Self {
        Self {
            stem: conv([3, 32], [3, 1, 1], device),
            res1: ResidualBlock::new(32, device),
            down1: conv([32, 64], [4, 2, 1], device),
            res2: ResidualBlock::new(64, device),
            down2: conv([64, 128], [4, 2, 1], device),
            res3: ResidualBlock::new(128, device),
            head: linear(128 * 8 * 8, 2 * latent, device),
            latent,
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let h = self.res1.forward(self.stem.forward(x));
        let h = self.res2.forward(self.down1.forward(h));
        let h = relu(self.res3.forward(self.down2.forward(h)));
        let h: Tensor<B, 2> = h.flatten(1, 3);
        split_moments(self.head.forward(h), self.latent)
    }
}

/// `cifar-resnet` decoder: Linear(L -> 128*8*8), Res(128), ConvT(128->64, k4 s2 p1),
/// Res(64), ConvT(64->32, k4 s2 p1), Res(32), ReLU, Conv(32->out, k3 p1).
#[derive(Module, Debug)]
pub struct ResnetDecoder<B: Backend> {
    fc: Linear<B>,
    res1: ResidualBlock<B>,
    up1: ConvTranspose2d<B>,
    res2: ResidualBlock<B>,
    up2: ConvTranspose2d<B>,
    res3: ResidualBlock<B>,
    out: Conv2d<B>,
}

impl<B: Backend> ResnetDecoder<B> {
    fn new(latent: usize, out_channels: usize, device: &B::Device) -> Self {
        Self {
            fc: linear(latent, 128 * 8 * 8, device),
            res1: ResidualBlock::new(128, device),
            up1: deconv([128, 64], [4, 2, 1], device),
            res2: ResidualBlock::new(64, device),
            up2: deconv([64, 32], [4, 2, 1], device),
            res3: ResidualBlock::new(32, device),
            out: conv([32, out_channels], [3, 1, 1], device),
        }
    }

    fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 4> {
        let n = z.dims()[0];
        let h = self.fc.forward(z).reshape([n, 128, 8, 8]);
        let h = self.up1.forward(self.res1.forward(h));
        let h = self.up2.forward(self.res2.forward(h));
        self.out.forward(relu(self.res3.forward(h)))
    }
}

/// The encoder of a model, by architecture.
// Built once per model; the size of the enum does not matter (and Module is not implemented for Box).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder<B: Backend> {
    /// `mnist-small`.
    Small(SmallEncoder<B>),
    /// `mnist-paper`.
    Paper(PaperEncoder<B>),
    /// `cifar-resnet`.
    Resnet(ResnetEncoder<B>),
}

impl<B: Backend> Encoder<B> {
    /// A freshly initialised encoder for `config`.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        match config.architecture {
            Architecture::MnistSmall => {
                Encoder::Small(SmallEncoder::new(config.latent_dim, device))
            }
            Architecture::MnistPaper => {
                Encoder::Paper(PaperEncoder::new(config.latent_dim, device))
            }
            Architecture::CifarResnet => {
                Encoder::Resnet(ResnetEncoder::new(config.latent_dim, device))
            }
        }
    }

    /// Mean and log-variance `[N, L]` of `e(z|x)` for images `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        match self {
            Encoder::Small(e) => e.forward(x),
            Encoder::Paper(e) => e.forward(x),
            Encoder::Resnet(e) => e.forward(x),
        }
    }
}

/// The decoder network of a model, by architecture.
// Built once per model; the size of the enum does not matter (and Module is not implemented for Box).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Decoder<B: Backend> {
    /// `mnist-small`.
    Small(SmallDecoder<B>),
    /// `mnist-paper`.
    Paper(PaperDecoder<B>),
    /// `cifar-resnet`.
    Resnet(ResnetDecoder<B>),
}

impl<B: Backend> Decoder<B> {
    /// A freshly initialised decoder for `config`.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let out = config.architecture.image_shape()[0] * config.decoder.params_per_channel();
        let l = config.latent_dim;
        match config.architecture {
            Architecture::MnistSmall => Decoder::Small(SmallDecoder::new(l, out, device)),
            Architecture::MnistPaper => Decoder::Paper(PaperDecoder::new(l, out, device)),
            Architecture::CifarResnet => Decoder::Resnet(ResnetDecoder::new(l, out, device)),
        }
    }

    /// Likelihood parameters `[N, C * params_per_channel, H, W]` for latents `[N, L]`.
    pub fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 4> {
        match self {
            Decoder::Small(d) => d.forward(z),
            Decoder::Paper(d) => d.forward(z),
            Decoder::Resnet(d) => d.forward(z),
        }
    }
}

/// A one-hidden-layer classifier `W2 relu(W1 z + b1) + b2`.
#[derive(Module, Debug)]
pub struct MlpClassifier<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
}

/// The classifier `c(y|z)`: logits for latents `[N, L]`.
// Built once per model; the size of the enum does not matter (and Module is not implemented for Box).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Classifier<B: Backend> {
    /// `W z + b`.
    Linear(Linear<B>),
    /// One hidden ReLU layer.
    Mlp(MlpClassifier<B>),
}

impl<B: Backend> Classifier<B> {
    /// A freshly initialised classifier for `config`.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let (l, k) = (config.latent_dim, config.num_classes);
        match config.classifier {
            ClassifierKind::Linear => Classifier::Linear(linear(l, k, device)),
            ClassifierKind::Mlp { hidden } => Classifier::Mlp(MlpClassifier {
                hidden: linear(l, hidden, device),
                out: linear(hidden, k, device),
            }),
        }
    }

    /// Class logits `[N, K]`.
    pub fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Classifier::Linear(c) => c.forward(z),
            Classifier::Mlp(c) => c.out.forward(relu(c.hidden.forward(z))),
        }
    }
}
